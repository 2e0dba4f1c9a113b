"""`explorer train`: epoch lines, a recorded run, resume, one-line errors."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.cli.common import EXIT_CANCELLED
from explorer.core import jobs, models
from explorer.store import Workspace

BASE = ["train", "--arch", "mlp", "--hidden", "32", "--depth", "1",
        "--limit-train", "256", "--batch-size", "64", "--eval-n", "64",
        "--eval-steps", "2"]  # fmt: skip


def _lines(capsys) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]


def test_train_one_epoch_json_records_a_run(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, *BASE, "--defense", "pgd-at", "--steps", "2",
                 "--eps", "8/255", "--epochs", "1", "--json"])
    assert code == 0
    *epochs, last = _lines(capsys)
    assert [e["epoch"] for e in epochs] == [1]
    assert set(epochs[0]) == {"event", "epoch", "train_loss", "train_acc",
                              "test_clean_acc", "test_robust_acc", "lr",
                              "epoch_seconds"}
    assert set(last) >= {"run_id", "epochs", "clean_acc", "robust_acc", "seconds"}
    assert last["epochs"] == 1
    assert last["params"] == {"eps": pytest.approx(8 / 255), "alpha": 0.025,
                              "steps": 2}
    with Workspace.open(ws) as store:
        run = store.get(last["run_id"])
        assert (run.kind, run.status) == ("train", "finished")
        assert run.config["defense"] == "pgd-at"
        assert run.config["limit_train"] == 256
        folder = store.run_dir(run.id)
        assert "test_robust_acc" in store.metrics(run.id)
    assert (folder / "last.pt").exists()
    assert models.load(folder / "best.safetensors").meta.arch == "mlp"


def test_resume_continues_to_the_planned_epochs(capsys, tmp_path, monkeypatch):
    ws = str(tmp_path / "ws")

    class StopInEpochTwo(jobs.CancelToken):
        calls = 0

        def check(self) -> None:
            # 4 batches + 1 evaluation batch per epoch: stop at epoch 2's first.
            StopInEpochTwo.calls += 1
            if StopInEpochTwo.calls == 6:
                raise jobs.Cancelled

    monkeypatch.setattr(jobs, "CancelToken", StopInEpochTwo)
    code = main(["--workspace", ws, *BASE, "--defense", "standard", "--epochs",
                 "2", "--json"])
    assert code == EXIT_CANCELLED
    assert [e["epoch"] for e in _lines(capsys)] == [1]
    with Workspace.open(ws) as store:
        (run,) = store.runs(kind="train")
        assert run.status == "cancelled"
    monkeypatch.undo()
    assert main(["--workspace", ws, "train", "--resume", run.id, "--json"]) == 0
    *epochs, last = _lines(capsys)
    assert [e["epoch"] for e in epochs] == [2]
    assert (last["run_id"], last["epochs"]) == (run.id, 2)
    with Workspace.open(ws) as store:
        assert store.get(run.id).status == "finished"


@pytest.mark.parametrize(("flags", "message"), [
    (["--defense", "pgd-at", "--eps", "2"], "--eps: eps must be in [0, 1]"),
    (["--defense", "trades", "--beta", "x"], "--beta: beta must be a number"),
    (["--defense", "nope"], "unknown defense 'nope'"),
    (["--defense", "standard", "--epochs", "0"], "--epochs must be at least 1"),
    (["--defense", "standard", "--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--defense", "standard", "--schedule", "x"], "--schedule"),
    ([], "--defense is required"),
])  # fmt: skip
def test_bad_flags_give_one_line(capsys, tmp_path, flags, message):
    code = main(["--workspace", str(tmp_path / "ws"), "train", *flags])
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
