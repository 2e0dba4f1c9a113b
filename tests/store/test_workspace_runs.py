"""Runs in a workspace: create, record events, finish, read back."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from explorer.core.jobs import Artifact, Done, Image, Log, Metric, Progress
from explorer.store import RunRecord, Workspace, WorkspaceError, default_location


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws") as workspace:
        yield workspace


def test_default_location_honours_explorer_home(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_HOME", str(tmp_path / "elsewhere"))
    assert default_location() == tmp_path / "elsewhere"
    with Workspace() as workspace:
        assert workspace.path == tmp_path / "elsewhere"
        assert (tmp_path / "elsewhere" / "runs").is_dir()


def test_default_location_without_env_is_user_data(monkeypatch):
    monkeypatch.delenv("EXPLORER_HOME")
    location = default_location()
    assert location.name == "workspace"
    assert location.parent.name == "robustness-explorer"


def test_create_finish_query_round_trip(ws):
    config = {"model": "fmnist-cnn", "eps": 0.1, "path": Path("/x"), "n": np.int64(3)}
    run = ws.create_run("eval", config, title="first eval")
    assert isinstance(run, RunRecord)
    assert run.status == "running"
    assert run.kind == "eval"
    assert run.title == "first eval"
    assert "-eval-" in run.id
    assert run.config == {"model": "fmnist-cnn", "eps": 0.1, "path": "/x", "n": 3}
    assert run.ended is None
    assert run.pid is not None
    assert run.host
    assert ws.run_dir(run.id).is_dir()

    ws.record(run.id, Done({"accuracy": 0.91}))
    done = ws.finish(run.id, "finished")
    assert done.status == "finished"
    assert done.summary == {"accuracy": 0.91}
    assert done.ended is not None
    assert done.ended >= done.started
    assert done.progress == 1.0
    assert ws.get(run.id) == done

    payload = done.to_json()
    json.dumps(payload)
    assert payload["id"] == run.id
    assert payload["status"] == "finished"
    assert payload["duration"] >= 0


def test_config_and_summary_files_are_valid_json(ws):
    run = ws.create_run("attack", {"eps": 8 / 255, "steps": 10})
    folder = ws.run_dir(run.id)
    assert json.loads((folder / "config.json").read_text()) == {
        "eps": 8 / 255,
        "steps": 10,
    }
    ws.finish(run.id, "failed", summary={"done": 3}, error="out of memory")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == "out of memory"
    assert summary["summary"] == {"done": 3}
    assert not list(folder.glob(".*.tmp"))


def test_runs_newest_first_and_filters(ws):
    a = ws.create_run("eval", {})
    b = ws.create_run("train", {})
    c = ws.create_run("eval", {})
    ws.finish(a.id, "cancelled")
    assert [r.id for r in ws.runs()] == [c.id, b.id, a.id]
    assert [r.id for r in ws.runs(kind="eval")] == [c.id, a.id]
    assert [r.id for r in ws.runs(status="cancelled")] == [a.id]
    assert [r.id for r in ws.runs(limit=2)] == [c.id, b.id]
    assert len({a.id, b.id, c.id}) == 3


def test_metric_series_ordered_by_step(ws):
    run = ws.create_run("train", {})
    for step in (2, 0, 1):
        ws.record(run.id, Metric("loss", 1.0 / (step + 1), step))
    ws.log_metrics(run.id, [("acc", 0, 0.5), ("acc", 1, 0.6), ("loss", 3, math.nan)])
    series = ws.metrics(run.id)
    assert series["acc"] == [(0, 0.5), (1, 0.6)]
    steps = [s for s, _ in series["loss"]]
    assert steps == [0, 1, 2, 3]
    assert math.isnan(series["loss"][-1][1])
    assert ws.metrics(run.id, "acc") == [(0, 0.5), (1, 0.6)]
    assert ws.metrics(run.id, "missing") == []


def test_artifacts_stored_relative_to_run_folder(ws, tmp_path):
    run = ws.create_run("attack", {})
    inside = ws.run_dir(run.id) / "images" / "adv.png"
    inside.parent.mkdir()
    inside.write_bytes(b"png")
    outside = tmp_path / "model.safetensors"
    ws.record(run.id, Artifact("adversarial", inside))
    ws.record(run.id, Artifact("model", outside))
    entries = ws.artifacts(run.id)
    assert [e.name for e in entries] == ["adversarial", "model"]
    assert entries[0].path == inside
    assert entries[1].path == outside.resolve()
    stored = ws._db.query("SELECT path FROM artifacts ORDER BY rowid")
    assert stored == [("images/adv.png",), (str(outside.resolve()),)]


def test_artifacts_follow_a_moved_workspace(tmp_path):
    with Workspace(tmp_path / "a") as first:
        run = first.create_run("eval", {})
        (first.run_dir(run.id) / "report.html").write_text("hi")
        first.record(run.id, Artifact("report", first.run_dir(run.id) / "report.html"))
    (tmp_path / "a").rename(tmp_path / "b")
    with Workspace(tmp_path / "b") as moved:
        (entry,) = moved.artifacts(run.id)
        assert entry.path.read_text() == "hi"


def test_logs_and_images(ws):
    run = ws.create_run("train", {})
    ws.record(run.id, Log("started"))
    ws.record(run.id, Log("robust overfitting", level="warning"))
    ws.record(run.id, Image("x", np.zeros((2, 2), dtype=np.float32)))
    logs = ws.logs(run.id)
    assert [(e.level, e.message) for e in logs] == [
        ("info", "started"),
        ("warning", "robust overfitting"),
    ]
    assert logs[0].time <= logs[1].time


def test_progress_is_throttled_but_final_always_written(ws):
    run = ws.create_run("train", {})
    now = [100.0]
    ws._clock = lambda: now[0]
    ws.record(run.id, Progress(1, 10))
    assert ws.get(run.id).progress == pytest.approx(0.1)
    ws.record(run.id, Progress(2, 10))
    now[0] += 0.1
    ws.record(run.id, Progress(3, 10))
    assert ws.get(run.id).progress == pytest.approx(0.1)
    now[0] += 0.5
    ws.record(run.id, Progress(4, 10))
    assert ws.get(run.id).progress == pytest.approx(0.4)
    ws.record(run.id, Progress(10, 10))
    assert ws.get(run.id).progress == pytest.approx(1.0)


def test_unknown_run_id_is_named(ws):
    for call in (
        lambda: ws.get("nope-123"),
        lambda: ws.finish("nope-123", "finished"),
        lambda: ws.record("nope-123", Metric("loss", 1.0)),
        lambda: ws.record("nope-123", Progress(1, 2)),
        lambda: ws.metrics("nope-123"),
        lambda: ws.run_dir("nope-123"),
        lambda: ws.delete_run("nope-123"),
    ):
        with pytest.raises(WorkspaceError, match="nope-123"):
            call()
    with pytest.raises(WorkspaceError, match="no run"):
        ws.run_dir("../../etc")


def test_bad_status_lists_allowed(ws):
    run = ws.create_run("eval", {})
    with pytest.raises(WorkspaceError, match="finished, failed, cancelled") as info:
        ws.finish(run.id, "done")
    assert "'done'" in str(info.value)
    assert ws.get(run.id).status == "running"


def test_bad_kind_and_event(ws):
    with pytest.raises(WorkspaceError, match="kind"):
        ws.create_run("", {})
    run = ws.create_run("eval", {})
    with pytest.raises(TypeError, match="not a job event"):
        ws.record(run.id, "hello")


def test_delete_run_removes_rows_and_folder(ws):
    run = ws.create_run("eval", {})
    ws.record(run.id, Metric("acc", 0.5))
    folder = ws.run_dir(run.id)
    ws.delete_run(run.id)
    assert not folder.exists()
    assert ws.runs() == []
    assert ws._db.query("SELECT COUNT(*) FROM metrics") == [(0,)]


def test_resume_marks_running_again(ws):
    run = ws.create_run("train", {})
    ws.finish(run.id, "cancelled")
    resumed = ws.resume(run.id)
    assert resumed.status == "running"
    assert resumed.ended is None


def test_closed_workspace_refuses(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    workspace.close()
    workspace.close()
    assert workspace.closed
    with pytest.raises(WorkspaceError, match="closed"):
        workspace.runs()
