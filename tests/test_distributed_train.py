"""``explorer train`` under torchrun: two gloo processes on this machine.

The slow tests start real ``python -m torch.distributed.run`` subprocesses
(each with a timeout, so a hang fails instead of blocking) on a fresh
workspace; the fast ones check the pieces that need no process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from explorer.cli import main
from explorer.cli.common import CliError
from explorer.cli.train_ranks import check_processes
from explorer.core import defenses, distributed
from explorer.core.defenses.trainer import sync_mode
from explorer.core.params import ParamError
from explorer.store import Workspace

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--arch", "mlp", "--eval-steps", "2", "--seed", "0", "--json"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "",
            "EXPLORER_THREADS": "1", "EXPLORER_DIST_TIMEOUT": "60"}


def _command(ws: Path, flags: list[str], nproc: int) -> list[str]:
    launcher = ([] if nproc == 1 else
                ["-m", "torch.distributed.run", "--standalone",
                 "--nproc-per-node", str(nproc)])
    return [sys.executable, *launcher, "-m", "explorer", "--workspace", str(ws),
            "train", *flags]


def _train(ws: Path, flags: list[str], nproc: int) -> tuple[int, list[dict], str]:
    done = subprocess.run(_command(ws, flags, nproc), cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)
    lines = [json.loads(line) for line in done.stdout.splitlines()
             if line.startswith("{")]
    return done.returncode, lines, done.stderr


# -- fast: no process group ---------------------------------------------------

def test_every_defense_names_how_its_ranks_stay_equal():
    for name in defenses.names():
        assert sync_mode(defenses.create(name)) in distributed.SYNC_MODES, name
    wrapped = defenses.create_wrapped("gat", {}, {})  # NoiLIn trains as GAT does
    assert sync_mode(wrapped) == "average"


def test_too_few_evaluation_images_for_the_processes_is_a_param_error():
    world = distributed.World(rank=0, size=4, backend="gloo")
    with pytest.raises(ParamError, match=r"eval_n: each of the 4 processes .* got 3"):
        distributed.check_split(world, "standard", "ddp", eval_n=3, n_test=100, n_val=0)
    with pytest.raises(ParamError, match="pgd-at cannot train with several "
                                         "processes: needs one GPU"):
        distributed.check_split(world, "pgd-at", "needs one GPU", eval_n=8, n_test=100,
                     n_val=8)
    distributed.check_split(world, "standard", "ddp", eval_n=4, n_test=100, n_val=4)


def test_fewer_eval_images_than_processes_is_one_cli_line():
    config = defenses.TrainingConfig(eval_n=1)
    with pytest.raises(CliError, match=r"--eval-n must be at least the number of "
                                       r"processes \(2\): .* got 1"):
        check_processes(config, distributed.World(rank=0, size=2, backend="gloo"))
    check_processes(config, distributed.SINGLE)
    check_processes(defenses.TrainingConfig(eval_n=2),
                    distributed.World(rank=1, size=2, backend="gloo"))


def test_a_method_that_cannot_run_on_several_processes_refuses_up_front(
        monkeypatch):
    from explorer.core.defenses.methods import Trades

    monkeypatch.setattr(Trades, "sync", "its loss needs the whole batch")
    world = distributed.World(rank=0, size=2, backend="gloo")
    config = defenses.TrainingConfig(defense="trades", params={"beta": 6.0})
    with pytest.raises(CliError, match=r"^trades cannot train with several processes: "
                                       r"its loss needs the whole batch$"):
        check_processes(config, world)
    check_processes(config, distributed.SINGLE)


def test_a_collective_failing_for_a_dead_peer_reads_as_one_short_line():
    world = distributed.World(rank=0, size=2, backend="gloo")
    gloo = RuntimeError("[../third_party/gloo/transport/tcp/pair.cc:534] Read error "
                        "[127.0.0.1]:1234: Connection reset by peer. This is "
                        "typically caused by a remote worker hanging\nmore")
    assert distributed.lost_peer(gloo, world) == (
        "rank 0 of 2: another process of the run stopped or cannot be reached "
        "(Read error [127.0.0.1]:1234: Connection reset by peer)")
    ours = distributed.DistributedError("rank 0 of 2: another process ...")
    assert distributed.lost_peer(ours, world) == str(ours)
    assert distributed.lost_peer(RuntimeError("shapes differ"), world) is None
    assert distributed.lost_peer(gloo, distributed.SINGLE) is None


def test_rank_zero_keeps_the_runs_random_stream_and_the_others_differ():
    assert distributed.rank_seed(7, 0, 123) == 7
    seeds = {distributed.rank_seed(7, r, s) for r in (1, 2, 3) for s in (0, 5)}
    assert len(seeds) == 6
    assert 7 not in seeds


def test_one_process_replicas_leave_the_model_alone():
    model = torch.nn.Linear(2, 2)
    cpu = torch.device("cpu")
    replicas = distributed.Replicas(model, distributed.SINGLE, "ddp", cpu)
    assert replicas.trained is model
    model(torch.ones(1, 2)).sum().backward()
    grad = model.weight.grad.clone()
    replicas.after_backward()
    assert torch.equal(model.weight.grad, grad)
    with pytest.raises(ValueError, match="sync mode must be one of"):
        distributed.Replicas(model, distributed.SINGLE, "nope", cpu)


def test_train_help_names_torchrun(capsys):
    assert main(["train", "--help"]) == 0
    assert "torchrun --nproc-per-node N -m explorer train" in capsys.readouterr().out


# -- slow: torchrun subprocesses ----------------------------------------------

@pytest.mark.slow
def test_two_processes_train_like_one_and_record_one_run(tmp_path):
    """Standard training of an MLP is deterministic: with the same global
    batch the two-process model is the one-process model up to rounding."""
    flags = ["--defense", "standard", "--epochs", "1", "--train-images", "256",
             "--batch-size", "32", "--eval-n", "64", *TINY]
    code, lines, err = _train(tmp_path / "one", flags, 1)
    assert code == 0, err
    one = lines[-1]
    code, lines, err = _train(tmp_path / "two", flags, 2)
    assert code == 0, err[-2000:]
    two = lines[-1]
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert (one["world_sizes"], two["world_sizes"]) == ([1], [2])
    assert abs(two["clean_acc"] - one["clean_acc"]) <= 0.05
    assert abs(two["best_val_clean_acc"] - one["best_val_clean_acc"]) <= 0.05
    assert sum(line["type"] == "result" for line in lines) == 1  # rank 0 prints
    with Workspace.open(tmp_path / "two") as ws:
        (run,) = ws.runs()
        assert (run.id, run.status, run.summary["world_size"]) == (
            two["run_id"], "finished", 2)
        assert (ws.run_dir(run.id) / "last.pt").exists()


def _rank_pids(launcher: int) -> dict[int, int]:
    """The worker processes torchrun ``launcher`` started: rank -> pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        rank = [v[5:] for v in env if v.startswith(b"RANK=")]
        if ppid == launcher and rank:
            found[int(rank[0])] = int(entry.name)
    return found


def _until_epoch_line(proc: subprocess.Popen, deadline: float) -> list[dict]:
    lines = []
    for line in proc.stdout:
        if line.startswith("{"):
            lines.append(json.loads(line))
            if lines[-1]["type"] == "epoch":
                return lines
        assert time.monotonic() < deadline, "no epoch line in time"
    raise AssertionError("the run ended before its first epoch line")


# lr 0.02: SGD's default 0.1 on batches of 8 diverged on one CPU (the loss
# reached 3e5 at batch 115), so the run failed before the moment under test.
SLOW_RUN = ["--defense", "pgd-at", "--steps", "5", "--epochs", "2", "--lr", "0.02",
            "--train-images", "1024", "--batch-size", "8", "--eval-n", "16", *TINY]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_killed_rank_stops_the_run_resumably(tmp_path):
    ws = tmp_path / "ws"
    proc = subprocess.Popen(_command(ws, SLOW_RUN, 2), cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _until_epoch_line(proc, time.monotonic() + 240)
        pids = _rank_pids(proc.pid)
        os.kill(pids[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    with Workspace.open(ws) as store:
        (run,) = store.runs()
    # Rank 0 sees the dead peer in its next collective (the run failed), or
    # torchrun's SIGTERM to the survivors gets there first (the run stopped);
    # either way it says so, keeps last.pt and names the resume command.
    assert f"resume with explorer train --resume {run.id}" in err, err[-3000:]
    assert "last.pt holds the weights after 1 epochs and" in err, err[-3000:]
    assert "another process of the run stopped" in run.error
    assert run.status in ("failed", "cancelled")
    if run.status == "cancelled":
        assert "torchrun ending the run after another process failed" in err
    code, lines, err = _train(ws, ["--resume", run.id, "--json"], 1)
    assert code == 0, err
    assert [e["epoch"] for e in lines if e["type"] == "epoch"] == [2]
    assert (lines[-1]["epochs"], lines[-1]["world_size"]) == (2, 1)
    assert lines[-1]["world_sizes"] == [2, 1]  # one entry per session
    with Workspace.open(ws) as store:
        assert store.get(run.id).status == "finished"


@pytest.mark.slow
def test_sigterm_cancels_a_two_process_run_and_keeps_its_checkpoint(tmp_path):
    ws = tmp_path / "ws"
    proc = subprocess.Popen(_command(ws, SLOW_RUN, 2), cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _until_epoch_line(proc, time.monotonic() + 240)
        os.killpg(proc.pid, signal.SIGTERM)  # what the app's Stop sends
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    with Workspace.open(ws) as store:
        (run,) = store.runs()
        folder = store.run_dir(run.id)
    assert f"cancelled by the user; resume with explorer train --resume {run.id}" in err
    assert run.status == "cancelled"
    assert (folder / "last.pt").exists()
    code, lines, err = _train(ws, ["--resume", run.id, "--json"], 2)
    assert code == 0, err[-2000:]
    assert (lines[-1]["epochs"], lines[-1]["world_sizes"]) == (2, [2, 2])


def test_commands_that_do_not_split_their_work_refuse_under_torchrun(
        monkeypatch, capsys):
    from explorer.cli.main import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["attack", "--model", "fmnist-cnn-standard"]) == 2
    err = capsys.readouterr().err
    assert "explorer attack runs in one process" in err
    assert "explorer train" in err
    monkeypatch.setenv("RANK", "1")  # the other ranks stay quiet
    assert main(["gui"]) == 2
    assert capsys.readouterr().err == ""


def test_a_bad_flag_is_said_once_not_once_per_process(monkeypatch, capsys):
    from explorer.cli.main import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    argv = ["eval", "--model", "fmnist-cnn-standard", "--no-such-flag"]
    monkeypatch.setenv("RANK", "1")
    assert main(argv) == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert main(argv) == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_a_stop_that_says_why_keeps_its_words_in_the_message_and_the_run(tmp_path):
    """A job that stops with a reason (a stop signal while a peer was lost)
    says it instead of "cancelled by the user", and the run records it; a
    plain stop records no error."""
    from explorer.cli.running import JobInterrupted, RecordedRun, run_job
    from explorer.core.jobs import Cancelled, CancelToken

    def stopping(reason: str):
        yield from ()
        raise Cancelled(reason)

    why = "stopped by a signal; rank 0 of 2: another process of the run stopped"
    with Workspace.open(tmp_path / "ws") as ws:
        for reason in (why, ""):
            with (pytest.raises(JobInterrupted) as caught,
                  RecordedRun(ws, "train", {}) as run):
                run_job(stopping(reason), CancelToken(), as_json=True)
            assert str(caught.value) == (reason or "cancelled by the user")
            stored = ws.get(run.id)
            assert (stored.status, stored.error) == ("cancelled", reason or None)
