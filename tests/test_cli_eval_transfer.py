"""`explorer eval --transfer`: the transfer matrix from the command line."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.cli import main

STD, PGDAT = "fmnist-cnn-standard", "fmnist-cnn-pgdat"
TWO = ["--model", STD, "--model", PGDAT]


def _run(capsys, tmp_path, *argv: str) -> tuple[int, str, str]:
    code = main(["--workspace", str(tmp_path / "ws"), "eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_gives_the_core_jobs_matrix_and_records_a_run(capsys, tmp_path):
    code, out, _ = _run(capsys, tmp_path, "--transfer", *TWO, "--n", "12",
                        "--steps", "2", "--eps", "8/255", "--seed", "4", "--json")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["type"] == "result"
    assert result["models"] == [STD, PGDAT]
    assert result["n"] == 12
    assert result["attack"] == "pgd"
    assert result["eps"] == pytest.approx(8 / 255)
    assert result["params"]["steps"] == 2

    from explorer.core import data, models
    from explorer.core.analysis.transfer import transfer_job
    from explorer.core.jobs import run_to_end

    x, y = data.load("fashion-mnist-mini", "test").as_tensors(0, 12)
    direct = run_to_end(transfer_job(
        {n: models.load_builtin(n) for n in (STD, PGDAT)}, x, torch.as_tensor(y),
        "pgd", 8 / 255, steps=2, seed=4))
    assert result["matrix"] == direct["matrix"]
    assert result["clean_acc"] == pytest.approx(direct["clean_acc"])
    from explorer.store import Workspace

    with Workspace.open(tmp_path / "ws") as ws:
        run = ws.get(result["run_id"])
    assert run.status == "finished"
    assert run.config["transfer"] is True
    assert run.summary["matrix"] == result["matrix"]


def test_the_table_has_rows_crafted_on_and_columns_evaluated_on(capsys, tmp_path):
    argv = ("--transfer", *TWO, "--n", "8", "--steps", "2", "--transfer-attack",
            "mim")
    code, out, _ = _run(capsys, tmp_path, *argv, "--json")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    code, out, _ = _run(capsys, tmp_path, *argv)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("transfer matrix: accuracy (%) on mim examples")
    assert lines[1].split() == ["crafted", "on", "\\", "evaluated", "on", STD, PGDAT]
    for i, name in enumerate((STD, PGDAT)):
        cells = lines[2 + i].split()
        assert cells[0] == name
        expected = [f"{100 * v:.2f}" + ("*" if j == i else "")
                    for j, v in enumerate(result["matrix"][i])]
        assert cells[1:] == expected
    assert lines[4].split()[-2:] == [f"{100 * v:.2f}" for v in result["clean_acc"]]
    assert lines[5].startswith("* white-box")


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--transfer", "--model", STD], 1,
     "a transfer matrix needs at least 2 models, got 1 (fmnist-cnn-standard)"),
    (["--transfer", "--model", STD, "--model", STD], 1, "at least 2 models"),
    (["--transfer", "--model", STD, "--model", "no-such-model"], 1,
     "unknown model 'no-such-model'"),
    (["--transfer", *TWO, "--transfer-attack", "deepfool"], 2,
     "'deepfool' has no eps budget"),
    (["--transfer", *TWO, "--eps", "8"], 2, "did you mean 8/255"),
    (["--transfer", *TWO, "--suite", "quick"], 2,
     "--suite does not go with --transfer"),
    (["--transfer", *TWO, "--masking-checks"], 2, "--masking-checks does not go"),
    (["--model", STD, "--transfer-attack", "pgd"], 2,
     "--transfer-attack goes with --transfer"),
    (["--transfer", *TWO, "--n", "0"], 2, "--n must be at least 1, got 0"),
])
def test_bad_input_is_one_line(capsys, tmp_path, argv, code, message):
    got, out, err = _run(capsys, tmp_path, *argv)
    assert got == code
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert out == ""
