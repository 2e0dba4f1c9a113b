"""`explorer train --amp` and `--compile`: recorded, switchable on resume,
one-line errors."""

from __future__ import annotations

import json

import torch

from explorer.cli import main, train_output
from explorer.core import jobs
from explorer.core.training import checkpoint
from explorer.store import Workspace

BASE = ["train", "--arch", "mlp", "--hidden", "32", "--depth", "1",
        "--limit-train", "128", "--batch-size", "64", "--eval-n", "32",
        "--eval-steps", "2", "--defense", "standard"]  # fmt: skip


def _lines(capsys) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]


def test_amp_is_recorded_and_a_resume_may_switch_it(capsys, tmp_path, monkeypatch):
    ws = str(tmp_path / "ws")
    printed = []
    print_epoch = train_output._print_epoch

    def record(epoch, *args):
        printed.append(epoch)
        print_epoch(epoch, *args)

    class StopInEpochTwo(jobs.CancelToken):
        def check(self) -> None:
            if printed:
                raise jobs.Cancelled

    monkeypatch.setattr(train_output, "_print_epoch", record)
    monkeypatch.setattr(jobs, "CancelToken", StopInEpochTwo)
    main(["--workspace", ws, *BASE, "--epochs", "2", "--amp", "bf16", "--json"])
    capsys.readouterr()
    with Workspace.open(ws) as store:
        (run,) = store.runs(kind="train")
        assert (run.config["amp"], run.config["compile"]) == ("bf16", False)
        folder = store.run_dir(run.id)
    assert checkpoint.load(folder / "last.pt")["config"]["amp"] == "bf16"
    monkeypatch.undo()
    assert main(["--workspace", ws, "train", "--resume", run.id, "--amp", "off",
                 "--json"]) == 0
    assert _lines(capsys)[-1]["epochs"] == 2
    assert checkpoint.load(folder / "last.pt")["config"]["amp"] == "off"


def test_fp16_on_cpu_is_one_line_and_exit_1(capsys, tmp_path):
    ws = tmp_path / "ws"
    code = main(["--workspace", str(ws), "--device", "cpu", *BASE, "--amp", "fp16"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err]
    assert ("--amp fp16 needs a CUDA GPU (float16 with loss scaling); this run is "
            "on cpu: choose --amp bf16 or off") in err
    with Workspace.open(ws) as store:
        assert store.runs(kind="train") == []  # refused before any run is recorded


def test_a_bad_amp_is_a_usage_error(capsys, tmp_path):
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--amp", "fp32"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "argument --amp: invalid choice: 'fp32'" in err


def test_compile_that_fails_logs_why_and_the_run_finishes(capsys, tmp_path,
                                                          monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no working C++ compiler")

    monkeypatch.setattr(torch, "compile", no_compiler)
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, "--epochs", "1", "--compile", "--json"]) == 0
    lines = _lines(capsys)
    logs = [e["message"] for e in lines if e["type"] == "log"]
    assert ("compile: torch.compile is not available (RuntimeError: no working C++ "
            "compiler); training continues uncompiled") in logs
    assert lines[-1]["epochs"] == 1
    with Workspace.open(ws) as store:
        assert store.get(lines[-1]["run_id"]).config["compile"] is True
