"""The shared job rows: JobControls (every page) and TrainingRunControls."""

from __future__ import annotations

import threading

from explorer.core.jobs import Done, Progress
from explorer.gui.widgets.job_controls import ERROR_STYLE, JobControls
from explorer.gui.widgets.training_run import STOPPED, TrainingRunControls


def steps_job(n, release: threading.Event, *, token):
    for i in range(n):
        token.check()
        release.wait(5)
        yield Progress(i + 1, n, "step")
    yield Done({"n": n})


def failing_job(*, token):
    yield Progress(0, 1)
    raise ValueError("eps must be in [0, 1], got 2")


def test_follow_runs_shows_progress_and_ends(qtbot, ctx):
    controls = JobControls("Run")
    qtbot.addWidget(controls)
    clicks = []
    controls.run_requested.connect(lambda: clicks.append(1))
    controls.run_button.click()
    assert clicks == [1]
    release = threading.Event()
    handle = ctx.runner.start(steps_job, name="steps", job_args=(3, release))
    controls.follow(handle, "working…")
    assert controls.running
    assert not controls.run_button.isEnabled()
    assert controls.cancel_button.isEnabled()
    assert controls.status.text() == "working…"
    release.set()
    with qtbot.waitSignal(controls.finished, timeout=10_000) as ended:
        pass
    assert ended.args == ["done"]
    assert controls.progress.value() == controls.progress.maximum()
    assert controls.run_button.isEnabled()
    assert not controls.cancel_button.isEnabled()
    assert not controls.running


def test_failure_and_cancel_are_said(qtbot, ctx):
    controls = JobControls()
    qtbot.addWidget(controls)
    controls.follow(ctx.runner.start(failing_job, name="fails"))
    with qtbot.waitSignal(controls.finished, timeout=10_000) as ended:
        pass
    assert ended.args == ["failed"]
    assert controls.status.text() == "Failed: eps must be in [0, 1], got 2"
    assert controls.status.styleSheet() == ERROR_STYLE
    release = threading.Event()
    controls.follow(ctx.runner.start(steps_job, name="steps", job_args=(100, release)))
    controls.cancel_button.click()
    assert controls.status.text() == "stopping…"
    release.set()
    with qtbot.waitSignal(controls.finished, timeout=10_000) as ended:
        pass
    assert ended.args == ["cancelled"]
    assert controls.status.text() == "Cancelled."
    assert controls.status.styleSheet() == ""


def test_a_replaced_job_no_longer_moves_the_row(qtbot, ctx):
    controls = JobControls()
    qtbot.addWidget(controls)
    old_release, new_release = threading.Event(), threading.Event()
    old = ctx.runner.start(steps_job, name="old", slot="s", job_args=(50, old_release))
    controls.follow(old)
    new = ctx.runner.start(steps_job, name="new", slot="s", job_args=(2, new_release))
    controls.follow(new)  # the page started again: the old one is cancelled
    old_release.set()
    qtbot.waitUntil(lambda: not old.running, timeout=10_000)
    assert controls.running  # the old job's end did not reset the row
    assert controls.handle is new
    new_release.set()
    with qtbot.waitSignal(controls.finished, timeout=10_000):
        pass


def test_training_row_follows_stops_and_checks_resume(qtbot, ctx, tmp_path):
    row = TrainingRunControls("Start training", where="under Runs")
    qtbot.addWidget(row)
    assert not row.can_resume(tmp_path, "run-1")
    assert row.status.text() == "Run run-1 has no checkpoint to resume from."
    (tmp_path / "last.pt").write_bytes(b"")
    assert row.can_resume(tmp_path, "run-1")
    release = threading.Event()
    handle = ctx.runner.start(steps_job, name="train", job_args=(100, release))
    row.follow(handle, "run-1", resume=False)
    assert row.status.text() == "starting run-1…"
    assert not row.start_button.isEnabled()
    assert row.stop_button.isEnabled()
    row.stop_button.click()
    assert row.status.text() == "stopping after the current batch…"
    release.set()
    with qtbot.waitSignal(row.finished, timeout=10_000):
        pass
    assert row.status.text() == STOPPED.format(run_id="run-1", where="under Runs")
    row.set_buttons(can_resume=True)
    assert row.start_button.isEnabled()
    assert row.resume_button.isEnabled()
    assert not row.stop_button.isEnabled()
