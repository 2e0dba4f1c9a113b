"""Workspaces shared by processes, full disks, read-only folders, kill -9.

Each test runs real ``explorer`` processes on one workspace and checks what
a user would find afterwards: every run listed with a truthful status, its
checkpoint whole (a resume finishes it), no temporary files left behind,
and the SQLite database intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from explorer.store import Workspace

TRAIN = ["train", "--defense", "standard", "--arch", "mlp", "--hidden", "32",
         "--depth", "1", "--limit-train", "512", "--batch-size", "64",
         "--eval-n", "64", "--eval-steps", "2", "--json"]  # fmt: skip
ENV = dict(os.environ, EXPLORER_THREADS="1", QT_QPA_PLATFORM="offscreen")


def _explorer(workspace: Path, *argv: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "explorer", "--workspace", str(workspace), *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, **popen,
    )


def _finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _no_temporary_files(workspace: Path) -> None:
    left = [p for p in workspace.rglob("*") if p.name.endswith(".tmp")]
    assert left == [], left


def _integrity(workspace: Path) -> str:
    with contextlib.closing(sqlite3.connect(workspace / "runs.sqlite")) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.mark.slow
def test_two_train_processes_on_one_workspace_both_finish(tmp_path):
    workspace = tmp_path / "ws"
    first = _explorer(workspace, *TRAIN, "--epochs", "2", "--seed", "1")
    second = _explorer(workspace, *TRAIN, "--epochs", "2", "--seed", "2")
    results = []
    for proc in (first, second):
        code, out, err = _finish(proc)
        assert code == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["run_id"] != results[1]["run_id"]
    with Workspace.open(workspace) as ws:
        runs = {r.id: r for r in ws.runs(kind="train")}
        assert set(runs) == {r["run_id"] for r in results}
        for result in results:
            run = runs[result["run_id"]]
            assert run.status == "finished"
            assert run.summary["epochs"] == 2
            epochs = [step for step, _ in ws.metrics(run.id, "train_loss")]
            assert epochs == [1, 2]  # each run holds its own numbers only
            assert (ws.run_dir(run.id) / "best.safetensors").exists()
    assert _integrity(workspace) == "ok"
    _no_temporary_files(workspace)


def _limit_file_size(limit: int):
    def apply() -> None:
        # Writes past `limit` bytes fail with EFBIG instead of killing the
        # process: the same failure a full disk gives every writer.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _resume_finishes(workspace: Path, run_id: str, epochs: int) -> None:
    """A resume ends the run at ``epochs`` from its last whole checkpoint; a
    run that failed before its first checkpoint says exactly that."""
    with Workspace.open(workspace) as ws:
        checkpoint = ws.run_dir(run_id) / "last.pt"
    code, out, err = _finish(_explorer(workspace, "train", "--resume", run_id,
                                       "--json"))
    if not checkpoint.exists():
        assert code == 1, err
        assert err.strip() == f"error: no checkpoint to resume from: {checkpoint} " \
                              "does not exist"
        return
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["epochs"] == epochs
    with Workspace.open(workspace) as ws:
        assert ws.get(run_id).status == "finished"


def _check_failed_cleanly(workspace: Path, err: str, why: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    assert str(workspace) in lines[0], lines[0]  # names the file
    assert why in lines[0], lines[0]
    assert "Traceback" not in err
    _no_temporary_files(workspace)
    with Workspace.open(workspace) as ws:
        (run,) = ws.runs(kind="train")
        assert run.status in {"failed", "interrupted"}, run.status
        return run.id


@pytest.mark.slow
def test_a_full_disk_mid_run_fails_clearly_and_the_run_resumes(tmp_path):
    workspace = tmp_path / "ws"
    Workspace.open(workspace).close()  # the database exists, as usual
    proc = _explorer(workspace, *TRAIN, "--epochs", "3",
                     preexec_fn=_limit_file_size(96 * 1024))
    code, _out, err = _finish(proc)
    assert code == 1, err
    run_id = _check_failed_cleanly(workspace, err, "File too large")
    assert _integrity(workspace) == "ok"
    _resume_finishes(workspace, run_id, 3)


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as probe:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", probe], check=True)
    return ok


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount(), reason="needs permission to mount a tmpfs")
def test_a_really_full_disk_then_space_again(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=324k", "tmpfs", str(disk)],
                   check=True)
    try:
        workspace = disk / "ws"
        code, _out, err = _finish(_explorer(workspace, *TRAIN, "--epochs", "3"))
        assert code == 1, err
        run_id = _check_failed_cleanly(workspace, err, "full")
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        assert _integrity(workspace) == "ok"
        _resume_finishes(workspace, run_id, 3)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0 and not _can_mount(),
                    reason="root ignores permissions; a read-only mount needs mount")
def test_a_read_only_workspace_is_refused_and_left_untouched(tmp_path):
    workspace = tmp_path / "ws"
    with Workspace.open(workspace) as ws:
        run = ws.create_run("eval", {"model": "m"})
        ws.finish(run.id, "finished", summary={"clean_acc": 0.9})
    before = sorted(p.relative_to(workspace) for p in workspace.rglob("*"))
    if os.geteuid() == 0:  # a read-only view of the folder, as a read-only disk
        view = tmp_path / "read-only"
        view.mkdir()
        subprocess.run(["mount", "--bind", str(workspace), str(view)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
    else:
        view = workspace
        for path in [workspace, *workspace.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        code, _out, err = _finish(_explorer(view, *TRAIN, "--epochs", "1"))
        assert code == 1, err
        (line,) = [ln for ln in err.splitlines() if ln.startswith("error: ")]
        assert line == f"error: {view}: workspace folder is not writable"
    finally:
        if view != workspace:
            subprocess.run(["umount", str(view)], check=False)
        for path in [workspace, *workspace.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    after = sorted(p.relative_to(workspace) for p in workspace.rglob("*"))
    assert after == before


@pytest.mark.slow
def test_kill_9_after_the_first_epoch_then_resume(tmp_path):
    """SIGKILL once epoch 1 is reported: resuming ends at the planned epoch
    count, redoing at most the interrupted epoch; the database is intact."""
    workspace = tmp_path / "ws"
    proc = _explorer(workspace, *TRAIN, "--epochs", "3", "--limit-train", "2048",
                     "--checkpoint-minutes", "0")
    run_id = None
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("type") == "epoch" and event["epoch"] == 1:
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert _integrity(workspace) == "ok"
    with Workspace.open(workspace) as ws:  # the dead owner is noticed here
        (run,) = ws.runs(kind="train")
        run_id = run.id
        assert run.status == "interrupted"
        done_before = {step for step, _ in ws.metrics(run_id, "train_loss")}
    assert 1 in done_before
    code, out, err = _finish(_explorer(workspace, "train", "--resume", run_id,
                                       "--json"))
    assert code == 0, err
    events = [json.loads(x) for x in out.strip().splitlines()]
    redone = [e["epoch"] for e in events if e.get("type") == "epoch"]
    assert redone[-1] == 3
    assert redone[0] in (max(done_before), max(done_before) + 1)  # at most one again
    assert events[-1]["epochs"] == 3
    with Workspace.open(workspace) as ws:
        assert ws.get(run_id).status == "finished"
        assert sorted({s for s, _ in ws.metrics(run_id, "train_loss")}) == [1, 2, 3]
    assert _integrity(workspace) == "ok"
    _no_temporary_files(workspace)
