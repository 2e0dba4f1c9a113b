"""`explorer detect`: a detector's ROC numbers from the command line."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.store import Workspace

STD = "fmnist-cnn-standard"


def _run(capsys, tmp_path, *argv: str) -> tuple[int, str, str]:
    code = main(["--workspace", str(tmp_path / "ws"), "detect", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_gives_auc_threshold_and_records_a_run(capsys, tmp_path):
    code, out, _ = _run(capsys, tmp_path, "--model", STD, "--detector", "kd",
                        "--n", "24", "--fit-n", "60", "--steps", "3",
                        "--adaptive", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert {line["type"] for line in lines[:-1]} <= {"progress", "log", "metric"}
    result = lines[-1]
    assert result["type"] == "result"
    assert result["detector"] == "kd"
    assert 0.0 <= result["auc"] <= 1.0
    assert 0.0 <= result["tpr_at_5fpr"] <= 1.0
    assert isinstance(result["threshold"], float)
    assert result["detectors"]["kd"]["auc_adaptive"] == result["auc_adaptive"]
    assert result["fit_split"] == "train"
    assert result["model"] == STD
    assert result["training_method"] == "standard"
    assert result["n"] == 24
    assert 0 < result["n_adv"] <= result["n_clean"] <= 24
    assert any("dropout" in note for note in result["notes"])
    with Workspace.open(tmp_path / "ws") as ws:
        run = ws.get(result["run_id"])
        assert run.kind == "detect"
        assert run.status == "finished"


def test_text_output_names_the_numbers(capsys, tmp_path):
    code, out, _ = _run(capsys, tmp_path, "--model", STD, "--detector", "non-me",
                        "--n", "16", "--steps", "3", "--eps", "26/255")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("detector non-me on fmnist-cnn-standard (trained: "
                               "standard): pgd at l-inf eps 0.101961 (3 steps) on "
                               "16 images")
    assert "AUC" in lines[2]
    assert "TPR" in lines[2]
    assert "not trained with reverse cross-entropy" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--detector", "mahalanobis"], "--detector: unknown detector 'mahalanobis'"),
    (["--eps", "0"], "--eps: eps must be in (0, 1]"),
    (["--eps", "8"], "--eps: eps must be in [0, 1] for the l-inf threat model, "
                     "got 8; pixels are in [0, 1]: did you mean 8/255"),
    (["--eps", "big"], "--eps: eps must be a number, got 'big'"),
    (["--n", "0"], "--n: n must be an integer of at least 1, got 0"),
    (["--steps", "0"], "--steps: steps must be an integer of at least 1"),
    (["--fit-n", "3"], "--fit-n: fit_n must be an integer of at least 20"),
    (["--attack", "deepfool"], "--attack: attack 'deepfool' has no eps budget"),
    (["--attack", "nope"], "--attack: unknown attack 'nope'"),
])
def test_bad_values_are_one_line_naming_the_flag(capsys, tmp_path, argv, message):
    code, out, err = _run(capsys, tmp_path, "--model", STD, *argv)
    assert code == 2  # a usage error, as every command's bad flag values
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert out == ""
