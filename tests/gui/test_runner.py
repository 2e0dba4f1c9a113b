"""The job runner: results, errors, cancellation, coalescing, recording."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from explorer.core.jobs import Cancelled, Done, Image, Log, Metric, Progress
from explorer.gui.runner import JobRunner, error_text


def counting_job(n, *, token):
    for i in range(n):
        token.check()
        yield Metric("i", float(i), i)
        yield Progress(i + 1, n)
    yield Done({"total": n})


def failing_job(*, token):
    yield Progress(0, 1)
    raise ValueError("eps must be in [0, 1], got 2")


def blocking_job(started: threading.Event, release: threading.Event, cleanup: list,
                 *, token):
    try:
        started.set()
        while not token.cancelled:
            release.wait(0.01)
            yield Progress(0, 1)
        yield Done({})
    finally:
        cleanup.append(threading.current_thread().name)


def image_job(n, *, token):
    for i in range(n):
        yield Image("x", np.full((2, 2), i / n, dtype=np.float32))
    yield Done({})


@pytest.fixture
def runner(qapp):
    r = JobRunner()
    yield r
    r.cancel_all()


def test_done_carries_results_and_metrics(qtbot, runner):
    handle = runner.start(counting_job, name="count", job_args=(5,))
    metrics = []
    handle.metric.connect(metrics.append)
    with qtbot.waitSignal(handle.done, timeout=5000) as blocker:
        pass
    assert blocker.args == [{"total": 5}]
    assert [m.value for m in metrics] == [0, 1, 2, 3, 4]
    assert handle.state == "done"


def test_error_reaches_ui_as_one_line_message(qtbot, runner):
    handle = runner.start(failing_job, name="fail")
    with qtbot.waitSignal(handle.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["eps must be in [0, 1], got 2"]
    assert "Traceback" not in blocker.args[0]


def test_cancel_stops_job_and_runs_its_cleanup(qtbot, runner):
    started, release, cleanup = threading.Event(), threading.Event(), []
    handle = runner.start(blocking_job, name="block",
                          job_args=(started, release, cleanup))
    assert started.wait(5)
    with qtbot.waitSignal(handle.cancelled, timeout=5000):
        handle.cancel()
    assert cleanup, "the job's finally block did not run"
    assert handle.state == "cancelled"
    assert runner.active() == []


def test_restarting_a_slot_detaches_the_old_job(qtbot, runner):
    started, release, cleanup = threading.Event(), threading.Event(), []
    old = runner.start(blocking_job, name="a", slot="s",
                       job_args=(started, release, cleanup))
    assert started.wait(5)
    late = []
    old.done.connect(late.append)
    old.cancelled.connect(lambda: late.append("cancelled"))
    new = runner.start(counting_job, name="b", slot="s", job_args=(3,))
    with qtbot.waitSignals([new.done, old.finished], timeout=5000):
        pass
    assert late == []  # the old job's outcome never lands in the panel
    assert cleanup


def test_images_are_coalesced_to_the_latest(qtbot, runner):
    handle = runner.start(image_job, name="img", job_args=(500,))
    seen = []
    handle.image.connect(seen.append)
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    assert 1 <= len(seen) < 500
    assert seen[-1].array[0, 0] == pytest.approx(499 / 500)


class _Recorder:
    def __init__(self):
        self.events, self.closed = [], None

    def record(self, event):
        self.events.append(event)

    def close(self, state, results, error):
        self.closed = (state, results, error)


def test_recorder_sees_every_event_and_outcome(qtbot, runner):
    rec = _Recorder()
    handle = runner.start(counting_job, name="count", job_args=(4,), recorder=rec)
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    assert sum(isinstance(e, Metric) for e in rec.events) == 4
    assert rec.closed == ("done", {"total": 4}, None)


def test_recorder_sees_failure_and_cancel(qtbot, runner):
    rec = _Recorder()
    handle = runner.start(failing_job, name="fail", recorder=rec)
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    assert rec.closed == ("failed", {}, "eps must be in [0, 1], got 2")
    started, release, cleanup = threading.Event(), threading.Event(), []
    rec = _Recorder()
    handle = runner.start(blocking_job, name="block",
                          job_args=(started, release, cleanup), recorder=rec)
    assert started.wait(5)
    with qtbot.waitSignal(handle.finished, timeout=5000):
        handle.cancel()
    assert rec.closed[0] == "cancelled"


def test_failing_recorder_does_not_break_the_job(qtbot, runner, caplog):
    class Broken(_Recorder):
        def record(self, event):
            raise OSError("disk full")

    handle = runner.start(counting_job, name="count", job_args=(2,),
                          recorder=Broken())
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass
    assert "recording a job event failed" in caplog.text


def test_error_text_is_one_line():
    assert error_text(ValueError("a\nb")) == "a"
    assert error_text(KeyError("k")) == "'k'"
    assert error_text(ZeroDivisionError("x")) == "ZeroDivisionError: x"
    assert error_text(Log.__new__(Log) and TypeError("t")) == "TypeError: t"


def saving_job(started: threading.Event, saved: list, *, token):
    """Saves on Cancelled, as the trainer does, but never checks the token."""
    try:
        started.set()
        while True:
            yield Progress(0, 1)
    except Cancelled:
        saved.append("checkpoint")
        raise


def test_cancel_between_events_runs_the_jobs_cancel_path(qtbot, runner):
    started, saved = threading.Event(), []
    handle = runner.start(saving_job, name="save", job_args=(started, saved))
    assert started.wait(5)
    with qtbot.waitSignal(handle.cancelled, timeout=5000):
        handle.cancel()
    assert saved == ["checkpoint"]


def uninterruptible_job(release: threading.Event, *, token):
    """One long step that cannot look at the token (a big import, say)."""
    yield Progress(0, 1)
    release.wait(10)
    yield Done({"late": True})


def test_a_job_outliving_shutdown_reaches_nobody(qtbot, qapp):
    runner = JobRunner()
    release = threading.Event()
    handle = runner.start(uninterruptible_job, name="slow", job_args=(release,))
    qtbot.waitUntil(lambda: handle.state == "running", timeout=5000)
    seen: list[str] = []
    handle.done.connect(lambda _r: seen.append("done"))
    runner.jobs_changed.connect(lambda: seen.append("jobs_changed"))
    runner.shutdown(50)  # the window closes; the job is still inside its step
    release.set()
    qtbot.waitUntil(lambda: not handle.running, timeout=10_000)
    qapp.processEvents()
    assert seen == []


def test_background_jobs_are_not_listed(qtbot, runner):
    changes: list[int] = []
    runner.jobs_changed.connect(lambda: changes.append(len(runner.active())))
    handle = runner.start(counting_job, name="housekeeping", job_args=(3,),
                          background=True)
    assert runner.active() == []
    assert runner.active(background=True) == [handle]
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass
    assert changes == []


class _Closes:
    """A recorder that keeps the outcomes it is told."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def record(self, event) -> None:
        pass

    def close(self, state, results, error) -> None:
        self.outcomes.append(state)


def noting_job(ran: list, *, token):
    ran.append("ran")  # code before the first event
    yield Done({})


def test_a_job_still_queued_at_quit_never_runs(qtbot, qapp):
    """With the pool busy, a job still queued at quit is aborted before it
    begins: none of its code runs, and its run is recorded cancelled (it
    used to stay "running")."""
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    saved = pool.maxThreadCount()
    pool.setMaxThreadCount(1)
    try:
        runner = JobRunner()
        started, release, cleanup = threading.Event(), threading.Event(), []
        runner.start(blocking_job, name="busy", job_args=(started, release, cleanup))
        qtbot.waitUntil(started.is_set, timeout=5000)
        ran, closes = [], _Closes()
        queued = runner.start(noting_job, name="queued", job_args=(ran,),
                              recorder=closes)
        qtbot.wait(50)  # superqt hands the worker to the pool on a timer
        runner.shutdown(5000)
        qapp.processEvents()
        assert ran == []
        assert closes.outcomes == ["cancelled"]
        assert queued.state == "cancelled"
        assert cleanup  # the running one stopped at its next step
    finally:
        pool.setMaxThreadCount(saved)
