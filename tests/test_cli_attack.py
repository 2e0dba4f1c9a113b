"""`explorer attack`: JSON results, a recorded run, saved examples, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.cli import main
from explorer.store import Workspace

BASE = ["attack", "--model", "fmnist-cnn-standard"]
KEYS = {"clean_acc", "robust_acc", "success_rate", "mean_linf", "mean_l2", "mean_l1",
        "seconds", "images_per_second", "n", "attack", "params", "run_id"}


def test_attack_json_records_a_run(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, *BASE, "--attack", "pgd", "--eps", "8/255",
                 "--steps", "5", "--n", "64", "--json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    r = json.loads(lines[-1])
    assert set(r) >= KEYS
    assert r["n"] == 64
    assert r["attack"] == "pgd"
    assert 0.0 <= r["robust_acc"] < r["clean_acc"] <= 1.0
    assert 0.0 < r["success_rate"] <= 1.0
    assert r["mean_linf"] <= 8 / 255 + 1e-6
    assert r["params"]["eps"] == pytest.approx(8 / 255)
    assert r["params"]["steps"] == 5
    events = [json.loads(x) for x in lines[:-1]]
    assert any(e["type"] == "progress" for e in events)
    with Workspace.open(ws) as store:
        run = store.get(r["run_id"])
        assert (run.kind, run.status) == ("attack", "finished")
        assert run.config["attack"] == "pgd"
        assert run.config["params"]["steps"] == 5
        assert run.summary["robust_acc"] == pytest.approx(r["robust_acc"])
        assert "robust_acc" in store.metrics(run.id)


def test_attack_save_writes_examples_into_the_run(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, *BASE, "--attack", "fgsm", "--eps", "0.1",
                 "--n", "20", "--save"])
    assert code == 0
    out = capsys.readouterr().out
    assert "robust accuracy" in out
    with Workspace.open(ws) as store:
        (run,) = store.runs(kind="attack")
        folder = store.run_dir(run.id) / "examples"
        artifacts = {a.name for a in store.artifacts(run.id)}
    assert (folder.parent / "config.json").exists()  # the run's own, kept
    assert run.id in out
    assert len(list(folder.glob("example_*.png"))) == 16
    assert {"examples.npz", "config.json", "example_000.png"} <= artifacts
    with np.load(folder / "examples.npz", allow_pickle=False) as npz:
        assert npz["x_adv"].shape == (16, 1, 28, 28)


def test_attack_help_lists_the_attacks_flags(capsys):
    assert main(["attack", "--attack", "pgd", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--eps" in out
    assert "--norm" in out
    assert "--model" in out
    assert main(["attack", "--help"]) == 0
    assert "pgd" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--attack", "nope"], "nope"),
        (["--attack", "pgd", "--eps", "-1"], "--eps"),
        (["--attack", "pgd", "--norm", "l3"], "--norm"),
        (["--attack", "pgd", "--targeted", "class", "--target-class", "12"],
         "--target-class"),
        (["--attack", "fgsm", "--steps", "3"], "--steps"),
        (["--attack", "pgd", "--eps", "2"], "eps"),
        ([], "--attack"),
    ],
)
def test_errors_are_one_line_naming_the_flag(capsys, tmp_path, extra, needle):
    ws = tmp_path / "ws"
    code = main(["--workspace", str(ws), *BASE, "--n", "8", *extra])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert len(err.strip().splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err
    with Workspace.open(ws) as store:
        assert store.runs() == []  # rejected before a run was recorded
