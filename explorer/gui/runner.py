"""Run core jobs off the UI thread and forward their events as Qt signals.

One long-lived :class:`JobRunner` (owned by the main window) creates one
:class:`JobHandle` per job. Cancellation goes through the job's
:class:`~explorer.core.jobs.CancelToken`: the job stops at its next check and
its ``finally`` blocks run in the worker thread. Image and progress events are
coalesced so the UI repaints at most ~30 times a second whatever the job
yields; metrics, logs and the result are all delivered.

Qt objects are destroyed only in the GUI thread (see
:mod:`explorer.gui.collector` for the deadlock this prevents): the runner
installs the GUI-thread collector, and each handle keeps the superqt worker
(whose signals object is a QObject) and everything the job was given until
the worker thread has let go of them, then releases them in the GUI thread.
A job must still never be given a widget: pass plain values and copies.

At quit, superqt aborts every worker, and one that had not started never
runs :func:`_drive` at all; :meth:`JobRunner.shutdown` records such a
job's run as cancelled (it would otherwise stay "running"). A job whose
token was cancelled before it started runs none of its code.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from PySide6.QtCore import (
    QCoreApplication,
    QObject,
    QTimer,
    Signal,
    Slot,
)
from superqt.utils import create_worker

from explorer.core.jobs import (
    Artifact,
    Cancelled,
    CancelToken,
    Done,
    Event,
    Image,
    Log,
    Metric,
    Progress,
    Snapshot,
)
from explorer.gui import collector

log = logging.getLogger(__name__)

_CANCELLED = "cancelled"
PAINT_INTERVAL_MS = 33


def _drive(
    job: Callable[..., Iterator[Event]],
    token: CancelToken,
    args: tuple,
    kwargs: dict,
    recorder: Recorder | None,
    begun: threading.Event,
):
    """Worker-side wrapper: stop at the first event after a cancel, always close.

    A cancel seen between events is raised *inside* the job as ``Cancelled``
    at the point where it is suspended, so its own cancel handling runs
    (the trainer saves a checkpoint there) exactly as when the job notices
    the token itself. The recorder (workspace bookkeeping, with its disk
    writes) runs here in the worker thread, so the UI thread never waits on
    the disk.
    """
    begun.set()
    state, results, error = _CANCELLED, {}, None
    if token.cancelled:  # cancelled before it started (a quit): run none of it
        if recorder is not None:
            _safely(recorder.close, _CANCELLED, {}, None)
        return _CANCELLED
    gen = job(*args, token=token, **kwargs)
    try:
        for event in gen:
            if recorder is not None:
                _safely(recorder.record, event)
            if isinstance(event, Done):
                results = event.results
            yield event
            if token.cancelled:
                with contextlib.suppress(Cancelled, StopIteration):
                    gen.throw(Cancelled())
                return _CANCELLED
        state = "done"
    except Cancelled:
        return _CANCELLED
    except Exception as exc:
        state, error = "failed", error_text(exc)
        raise
    finally:
        gen.close()
        if recorder is not None:
            _safely(recorder.close, state, results, error)
    return None


class Recorder(Protocol):
    """Receives every event of a job and then its outcome."""

    def record(self, event: Event) -> None: ...

    def close(self, state: str, results: dict[str, Any], error: str | None) -> None:
        ...


def _safely(fn: Callable[..., None], *args: Any) -> None:
    # Bookkeeping must never take down the UI or the job.
    try:
        fn(*args)
    except Exception:
        log.exception("recording a job event failed")


def error_text(exc: BaseException) -> str:
    """A one-line message for the user; our own errors already read well."""
    text = str(exc).strip() or type(exc).__name__
    ours = type(exc).__module__.startswith("explorer.")
    if ours or isinstance(exc, ValueError | OSError | LookupError | RuntimeError):
        return text.splitlines()[0] if "\n" in text else text
    return f"{type(exc).__name__}: {text}"


class JobHandle(QObject):
    """One running job: typed signals the panels connect to."""

    started = Signal()
    progress = Signal(object)  # Progress
    metric = Signal(object)  # Metric
    image = Signal(object)  # Image (latest per name)
    snapshot = Signal(object)  # Snapshot (every one)
    log = Signal(object)  # Log
    artifact = Signal(object)  # Artifact
    done = Signal(dict)  # results of the final Done event
    failed = Signal(str)  # one-line message
    cancelled = Signal()
    finished = Signal()  # always last

    def __init__(
        self, name: str, parent: QObject | None = None, background: bool = False
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.background = background  # housekeeping: not listed, never asked about
        self.token = CancelToken()
        self.state = "queued"
        self.last_progress: Progress | None = None
        self.results: dict[str, Any] | None = None
        self.error: str | None = None
        self._worker = None
        self._given: tuple | None = None  # what the worker holds (released later)
        self._pending_images: dict[str, Image] = {}
        self._pending_progress: Progress | None = None
        self._paint = QTimer(self)
        self._paint.setSingleShot(True)
        self._paint.setInterval(PAINT_INTERVAL_MS)
        self._paint.timeout.connect(self._flush)
        self._detached = False
        self._begun = threading.Event()  # set by the worker when _drive starts
        self._outcome = "cancelled"  # what the worker returned, until finished
        self._recorder: Recorder | None = None  # until the job's end is known

    # -- public -------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop at its next step; ``cancelled`` follows."""
        self.token.cancel()

    def detach(self) -> None:
        """Stop delivering events to the panel: a late result never lands."""
        self._detached = True

    @property
    def running(self) -> bool:
        return self.state in {"queued", "running"}

    # -- worker plumbing ------------------------------------------------------
    def _start(
        self,
        job: Callable[..., Iterator[Event]],
        args: tuple,
        kwargs: dict,
        recorder: Recorder | None,
    ) -> None:
        worker = create_worker(
            _drive, job, self.token, args, kwargs, recorder, self._begun,
            _start_thread=False, _ignore_errors=True,  # errored is connected below
        )
        worker.started.connect(self._on_started)
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._given = (job, args, kwargs, recorder)
        self._recorder = recorder
        worker.start()

    @Slot()
    def _on_started(self) -> None:
        self.state = "running"
        self.started.emit()

    @Slot(object)
    def _on_yielded(self, event: Event) -> None:
        if self._detached:
            return
        if isinstance(event, Image):
            self._pending_images[event.name] = event
            self._schedule()
        elif isinstance(event, Progress):
            self.last_progress = event
            self._pending_progress = event
            self._schedule()
        elif isinstance(event, Metric):
            self.metric.emit(event)
        elif isinstance(event, Snapshot):
            self.snapshot.emit(event)
        elif isinstance(event, Log):
            self.log.emit(event)
        elif isinstance(event, Artifact):
            self.artifact.emit(event)
        elif isinstance(event, Done):
            self.results = event.results

    def _schedule(self) -> None:
        if not self._paint.isActive():
            self._paint.start()

    @Slot()
    def _flush(self) -> None:
        if self._pending_progress is not None:
            self.progress.emit(self._pending_progress)
            self._pending_progress = None
        images, self._pending_images = self._pending_images, {}
        for event in images.values():
            self.image.emit(event)

    # The outcome becomes the state only when ``finished`` is handled, so a
    # job counts as running until its done/failed/cancelled signals are out:
    # whoever sees "not running" also sees what those signals changed.
    @Slot(object)
    def _on_returned(self, value: object) -> None:
        self._outcome = "cancelled" if value == _CANCELLED else "done"

    @Slot(object)
    def _on_errored(self, exc: BaseException) -> None:
        self._outcome = "failed"
        self.error = error_text(exc)
        log.error(
            "job %s failed:\n%s",
            self.name,
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )

    def _close_unstarted(self) -> None:
        """A job whose worker ended (or will end) without beginning _drive,
        aborted at quit, records its run as cancelled."""
        recorder, self._recorder = self._recorder, None
        if recorder is not None and not self._begun.is_set():
            _safely(recorder.close, _CANCELLED, {}, None)

    def _release_worker(self) -> None:
        # The pool thread may still be returning from the worker's run():
        # the collector drops these once nothing else refers to them, here.
        collector.release_later(self._worker, self._given)
        self._worker = self._given = None

    @Slot()
    def _on_finished(self) -> None:
        self._close_unstarted()
        self._paint.stop()
        self._release_worker()
        self.state = self._outcome if self._outcome in {"done", "failed"} \
            else "cancelled"
        if self._detached:
            self.finished.emit()
            return
        self._flush()
        if self.state == "done":
            self.done.emit(self.results or {})
        elif self.state == "failed":
            self.failed.emit(self.error or "failed")
        else:
            self.cancelled.emit()
        self.finished.emit()


class JobRunner(QObject):
    """Starts jobs, one per ``slot``: starting a slot again cancels its old job."""

    jobs_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        collector.install()
        self._by_slot: dict[str, JobHandle] = {}
        self._active: list[JobHandle] = []

    def start(
        self,
        job: Callable[..., Iterator[Event]],
        *,
        name: str,
        slot: str | None = None,
        job_args: tuple = (),
        recorder: Recorder | None = None,
        background: bool = False,
        **kwargs: Any,
    ) -> JobHandle:
        """Run ``job(*job_args, token=..., **kwargs)`` in the thread pool.

        ``recorder`` receives every event and then the outcome, in the
        worker thread (see :func:`_drive`). A ``background`` job (housekeeping
        such as the start-up warm-up) is not listed by :meth:`active`.

        Connect to the returned handle's signals before control returns to
        the event loop (they are queued, so nothing is missed).
        """
        slot = slot or name
        old = self._by_slot.get(slot)
        if old is not None and old.running:
            old.detach()
            old.cancel()
        handle = JobHandle(name, self, background)
        self._by_slot[slot] = handle
        self._active.append(handle)
        handle.finished.connect(self._on_handle_finished)
        handle._start(job, job_args, kwargs, recorder)
        if not background:
            self.jobs_changed.emit()
        return handle

    def active(self, background: bool = False) -> list[JobHandle]:
        """Running jobs; housekeeping ones only with ``background=True``."""
        return [
            h for h in self._active if h.running and (background or not h.background)
        ]

    def cancel_all(self) -> None:
        for handle in self.active(background=True):
            handle.cancel()

    @Slot()
    def _on_handle_finished(self) -> None:
        handle = self.sender()
        if handle in self._active:
            self._active.remove(handle)
        if isinstance(handle, JobHandle):
            if not handle.background:
                self.jobs_changed.emit()
            handle.deleteLater()

    def shutdown(self, msecs: int = 3000) -> None:
        """Cancel everything and wait for the pool (application quit)."""
        from superqt.utils import WorkerBase

        self.cancel_all()
        try:
            WorkerBase.await_workers(msecs)
        except RuntimeError:  # superqt: "did not quit gracefully in the time"
            names = ", ".join(h.name for h in self.active(background=True))
            log.warning("jobs still running at shutdown: %s", names or "?")
        # Deliver the workers' last queued signals so every job records its
        # outcome (e.g. "cancelled") before the workspace closes.
        QCoreApplication.sendPostedEvents()
        for handle in list(self._active):
            handle._close_unstarted()
        # A job still running now (one that cannot stop mid-step) must not
        # reach panels or the closed workspace when it ends.
        for handle in self.active(background=True):
            handle.detach()
        self.blockSignals(True)
        gui_collector = collector.instance()
        if gui_collector is not None:
            gui_collector.sweep()
