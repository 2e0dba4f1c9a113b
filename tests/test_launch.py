"""core/launch.py: command building, JSON lines → events, the process group's
stop; cli/launch_args.py: the flags of a run the app starts as a subprocess."""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest

from explorer.cli import train as cli_train
from explorer.cli.running import snapshot_json
from explorer.core import defenses, launch, launch_args, models
from explorer.core.defenses.config import TrainingConfig
from explorer.core.defenses.evaluation import STRIP
from explorer.core.defenses.run_job import PLAN
from explorer.core.jobs import (
    Artifact,
    Cancelled,
    CancelToken,
    Done,
    Log,
    Metric,
    Progress,
    Snapshot,
)
from explorer.core.params import ParamError


def test_device_list_follows_cuda_count(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert launch.device_choices() == ["cuda:0", "cuda:1", "cuda:2"]
    assert launch.max_processes() == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert launch.device_choices() == [launch.CPU]
    assert launch.max_processes() == max(1, os.cpu_count() or 1)


def test_command_with_processes_and_devices():
    argv = launch.command(["train", "--json"], processes=2, workspace="WS",
                          devices=["cuda:1", "cuda:3"], python="PY")
    assert argv == ["PY", "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2", "-m", "--", "explorer",
                    "--workspace", "WS",
                    "--device", "cuda", "train", "--json"]
    env = launch.environment(["cuda:1", "cuda:3"], base={"PYTHONPATH": "x"})
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert env["PYTHONPATH"].split(os.pathsep)[1:] == ["x"]
    cpu = launch.command(["eval"], processes=1, devices=[launch.CPU])
    assert cpu[cpu.index("--device") + 1] == "cpu"
    assert launch.environment([launch.CPU], base={})["CUDA_VISIBLE_DEVICES"] == ""
    cores = os.cpu_count() or 1
    assert launch.environment(base={}, processes=2)["EXPLORER_THREADS"] == str(
        max(1, (cores - 1) // 2))
    assert launch.environment(base={"EXPLORER_THREADS": "3"}, processes=2)[
        "EXPLORER_THREADS"] == "3"


def test_torchrun_leaves_the_commands_flags_alone():
    """eval's --n would be an ambiguous abbreviation of torchrun's own flags."""
    from torch.distributed.run import get_args_parser

    argv = launch.command(["eval", "--n", "16", "--nnodes-like", "x"], python="PY")
    args = get_args_parser().parse_args(argv[3:])
    assert (args.module, args.nproc_per_node) == (True, "1")
    assert [args.training_script, *args.training_script_args] == argv[8:]


@pytest.mark.parametrize(("processes", "devices", "says"), [
    (0, [launch.CPU], "processes must be a whole number of at least 1, got 0"),
    (3, ["cuda:0", "cuda:1"], "processes must be at most the 2 chosen GPU(s), got 3"),
    (1, [], "devices: choose at least one device"),
])
def test_bad_processes_or_devices_are_named(processes, devices, says):
    with pytest.raises(ParamError, match=re.escape(says)):
        launch.command(["train"], processes=processes, devices=devices)


def test_lines_become_events_and_garbage_is_skipped():
    image = np.random.default_rng(0).random((2, 1, 4, 4), dtype=np.float32)
    snap = Snapshot(3, 5, {"x": image, "y": np.array([1, 2]),
                           "name": np.array(["a", "bc"]), "ok": np.array([True]),
                           "n": np.array(58), "id": np.array("r"),
                           "t": image[:, 0, ::2].transpose(2, 0, 1)},
                    "examples")
    lines = [
        '{"type": "run", "id": "r-1"}',
        '{"type": "progress", "done": 2, "total": 4, "label": "epoch 1/2"}',
        '{"type": "metric", "name": "train_loss", "value": 0.5, "step": 1}',
        '{"type": "metric", "name": "robust_acc", "value": null, "step": 0}',
        '{"type": "log", "level": "warning", "message": "careful"}',
        '{"type": "artifact", "name": "best", "path": "/r/best.safetensors"}',
        json.dumps(snapshot_json(snap)),
        '{"type": "epoch", "epoch": 1}',
        "Warning: some library printed this", "", "[1, 2]", '{"type": "metric"}',
        '{"type": "progress", "done": "x", "total": 1}',
        '{"type": "result", "epochs": 2, "run_id": "r-1"}',
    ]
    events = [launch.parse_line(line) for line in lines]
    assert launch.run_id_of(events[0]) == "r-1"
    assert events[1] == Progress(2, 4, "epoch 1/2")
    assert events[2] == Metric("train_loss", 0.5, 1)
    assert events[3].name == "robust_acc"
    assert np.isnan(events[3].value)
    assert events[4] == Log("careful", "warning")
    assert isinstance(events[5], Artifact)
    assert events[5].path.name == "best.safetensors"
    back = events[6]
    assert (back.step, back.total, back.label) == (3, 5, "examples")
    np.testing.assert_array_equal(back.arrays["x"], image)
    assert back.arrays["x"].dtype == np.float32
    assert back.arrays["y"].tolist() == [1, 2]
    assert back.arrays["name"].tolist() == ["a", "bc"]
    assert back.arrays["ok"].tolist() == [True]
    assert back.arrays["n"].shape == ()
    assert int(back.arrays["n"]) == 58
    assert str(back.arrays["id"]) == "r"
    np.testing.assert_array_equal(back.arrays["t"], snap.arrays["t"])
    assert events[7:13] == [None] * 6
    assert events[13] == Done({"epochs": 2, "run_id": "r-1"})


def test_the_train_command_passes_the_pages_snapshots():
    assert cli_train.APP_SNAPSHOTS == (PLAN, STRIP)


def test_error_lines_are_the_clis_not_a_traceback():
    stderr = ["Traceback (most recent call last):", '  File "x.py", line 1',
              "error: unknown data set 'nope'", "error: unknown data set 'nope'",
              "[W] torchrun: ChildFailedError"]
    assert launch.error_lines(stderr) == "error: unknown data set 'nope'"
    crash = ["Traceback (most recent call last):", '  File "x.py", line 3, in f',
             "ZeroDivisionError: division by zero"]
    assert launch.error_lines(crash) == "ZeroDivisionError: division by zero"


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_job_yields_its_lines_and_result():
    code = ("import json\n"
            "print('noise')\n"
            "print(json.dumps({'type': 'metric', 'name': 'm', 'value': 1.0}))\n"
            "print(json.dumps({'type': 'result', 'ok': True}))\n")
    events = list(launch.launch_job(_child(code), token=CancelToken()))
    assert events[0].message.startswith("started process group ")
    assert events[1:] == [Metric("m", 1.0, 0), Done({"ok": True})]


def test_a_failing_child_raises_its_error_line():
    code = ("import sys\nsys.stderr.write('some warning\\n')\n"
            "sys.stderr.write('error: --data: no data set called nope\\n')\n"
            "sys.exit(1)\n")
    with pytest.raises(launch.LaunchError,
                       match=r"^error: --data: no data set called nope$"):
        list(launch.launch_job(_child(code), token=CancelToken()))


def test_cancel_stops_the_whole_process_group(tmp_path):
    """A child that starts a grandchild and ignores nothing: cancel ends both,
    within the bounded waits (SIGTERM, then SIGKILL for one that ignores it)."""
    pids = tmp_path / "pids"
    code = ("import os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "kid = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(120)'])\n"
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{kid.pid}}')\n"
            "print('{\"type\": \"log\", \"message\": \"up\"}', flush=True)\n"
            "time.sleep(120)\n")
    token = CancelToken()
    job = launch.launch_job(_child(code), token=token, grace_s=1.0)
    assert next(job).message.startswith("started process group ")
    assert next(job) == Log("up")
    parent, kid = (int(p) for p in pids.read_text().split())
    assert os.getpgid(kid) == parent  # the grandchild is in the child's group
    token.cancel()
    with pytest.raises(Cancelled):  # SIGTERM ignored: SIGKILL after grace_s
        next(job)
    with pytest.raises(ProcessLookupError):
        os.killpg(parent, 0)


def test_train_argv_round_trips_through_explorer_train():
    config = TrainingConfig(
        defense="pgd-at", params={"eps": 8 / 255, "alpha": 0.01, "steps": 3},
        epochs=2, batch_size=32, optimizer="adam", lr=0.004, schedule="cyclic",
        seed=3, augment="none", eval_eps=0.05, eval_steps=2, eval_n=16,
        val_fraction=0.2, val_max=100, checkpoint_minutes=1.5,
        data="fashion-mnist-mini",
        arch="mlp", arch_params={"hidden": 32, "depth": 1}, limit_train=64,
        noilin={"rate": 0.1}, amp="bf16", compile=True)
    argv = launch_args.train_argv(config)
    assert (argv[0], argv[-1]) == ("train", "--json")
    ns, _ = cli_train.parse(argv[1:])
    rebuilt = cli_train._speed(cli_train._config(ns), ns, "cpu")
    assert rebuilt.to_json() == {**config.to_json(),
                                 "noilin": rebuilt.noilin}  # wrapper defaults added
    assert rebuilt.noilin["rate"] == 0.1
    assert launch_args.resume_argv("r-1") == ["train", "--resume", "r-1", "--json"]
    with pytest.raises(ParamError, match=r"momentum 0\.5 has no flag"):
        launch_args.train_argv(config.replace(momentum=0.5))


def test_every_defense_and_architecture_flag_is_named_as_the_cli_names_it():
    from explorer.core.params import add_flag_group

    # (the CLI's real names, whatever flags it gains: a clash shows here)
    ns, _ = cli_train._common_parser().parse_known_args([])
    assert launch_args.NOILIN_FLAGS == cli_train.NOILIN_FLAGS
    for defense in defenses.names():
        for arch in models.names():
            parser = cli_train._common_parser()
            dparams = defenses.spec(defense)
            dflags = add_flag_group(parser, "d", dparams, prefix="defense",
                                    taken=set(vars(ns)))
            aflags = add_flag_group(parser, "a", models.spec(arch), prefix="arch",
                                    taken=set(vars(ns)) | set(dflags))
            ours = launch_args.param_flags(dparams, "defense", launch_args.TRAIN_DESTS)
            assert ours == {k: p.flag for k, p in dflags.items()}
            assert launch_args.param_flags(
                models.spec(arch), "arch", launch_args.TRAIN_DESTS | set(dflags)
            ) == {k: p.flag for k, p in aflags.items()}


def test_eval_argv_names_the_suite_and_models():
    argv = launch_args.eval_argv(["a", "b.safetensors"], data="d", split="test",
                                 n=16, suite="custom", eps=0.1, sweep=False,
                                 checks=True, eot=2,
                                 custom={"attacks": ["pgd"], "budgets": [0.05]})
    assert argv == ["eval", "--model", "a", "--model", "b.safetensors", "--data", "d",
                    "--split", "test", "--n", "16", "--suite", "custom",
                    "--examples", "8", "--attacks", "pgd", "--budgets", "0.05",
                    "--masking-checks", "--eot", "2", "--json"]
    with pytest.raises(ParamError, match="at least one model"):
        launch_args.eval_argv([], data="d", split="test", n=1, suite="quick", eps=0.1)
