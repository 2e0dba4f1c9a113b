"""Garbage collection only in the GUI thread, and Qt objects freed only there.

Why this exists: Python's cyclic collector runs in whichever thread happens
to allocate when a generation fills up. If it frees a Qt object there (a
menu or a plot left over from a closed widget), the C++ destructor runs in
that worker thread: shiboken releases the GIL around ``delete``, the
destructor takes Qt's signal-connection mutex and then waits for the GIL
again (to look up Python overrides) — while the GUI thread holds the GIL and
waits for the same mutex (connecting a signal, deleting an object). Both
wait forever: the window freezes mid-run. The same happens when a worker
drops the *last reference* to a Qt object by plain reference counting.

The rules, set up by :func:`install` (the application, every panel preview,
the job runner and the test fixtures call it):

1. Automatic collection is off; :class:`GuiThreadCollector` collects from a
   GUI-thread timer, generation by generation as CPython would, so cycles
   are still freed within a fraction of a second.
2. ``gc.collect()`` called from any other thread (some libraries do) is not
   run there: it is counted and done by the GUI thread at its next tick.
3. Objects a worker may hold the last reference to (the superqt worker with
   its signals QObject, the job's arguments) are handed to
   :func:`release_later`; the GUI thread drops them once no other reference
   is left, so their destructors run in the GUI thread.

Any collection that still starts outside the GUI thread (a C extension
calling the collector directly) is counted in ``worker_collections`` and
logged; the tests fail on it.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Slot

log = logging.getLogger(__name__)

TICK_MS = 100
# CPython defers full collections until enough long-lived objects are new;
# that count is not visible from Python, so space them in time instead: a
# full collection at most once per FULL_SPACING times its last duration
# (at most 2% of the GUI thread's time, however many objects are alive).
FULL_SPACING = 50
_original_collect = gc.collect
_instance: GuiThreadCollector | None = None


class GuiThreadCollector(QObject):
    """Runs the cyclic collector in the GUI thread only (see module doc)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = TICK_MS):
        super().__init__(parent)
        self.gui_thread = threading.current_thread()
        self.thresholds = gc.get_threshold()
        self.worker_collections = 0
        self.deferred_requests = 0
        self.offenders: list[str] = []
        self._requested = False
        self._last_full = time.monotonic()
        self._full_cost = 0.0
        self._held: list[Any] = []
        self._lock = threading.Lock()
        gc.disable()
        gc.callbacks.append(self._watch)
        gc.collect = self._collect  # type: ignore[assignment]
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.tick)
        self._timer.start()

    # -- the collector ---------------------------------------------------------
    def _collect(self, generation: int = 2) -> int:
        """``gc.collect`` replacement: runs now in the GUI thread only."""
        if threading.current_thread() is self.gui_thread:
            return _original_collect(generation)
        with self._lock:
            self._requested = True
            self.deferred_requests += 1
        return 0

    def _watch(self, phase: str, info: dict) -> None:
        if phase == "start" and threading.current_thread() is not self.gui_thread:
            # Nothing can stop it now; say so loudly (the tests fail on it).
            self.worker_collections += 1
            name = threading.current_thread().name
            self.offenders.append(name)
            log.warning("garbage collection ran in thread %s", name)

    @Slot()
    def tick(self) -> None:
        """Collect what is due, and drop objects workers have let go of."""
        if gc.isenabled():
            log.warning("automatic garbage collection was re-enabled; turning it off")
            gc.disable()
        with self._lock:
            requested, self._requested = self._requested, False
        if requested:
            self._full()
        else:
            self.collect_due()
        self.sweep()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold."""
        counts = gc.get_count()
        if counts[2] > self.thresholds[2] and (
            time.monotonic() - self._last_full >= FULL_SPACING * self._full_cost
        ):
            return self._full()
        for generation in (1, 0):
            if counts[generation] > self.thresholds[generation]:
                return _original_collect(generation)
        return 0

    def _full(self) -> int:
        start = time.monotonic()
        found = _original_collect(2)
        self._last_full = time.monotonic()
        self._full_cost = self._last_full - start
        return found

    # -- objects released in the GUI thread -------------------------------------
    def release_later(self, *objects: Any) -> None:
        """Keep ``objects`` until no other thread refers to them, then drop them."""
        self._held.extend(o for o in objects if o is not None)

    def sweep(self) -> None:
        """Drop held objects that nothing else refers to (in this thread)."""
        if not self._held:
            return
        kept = []
        for obj in self._held:
            # References: the list, the loop variable and getrefcount's argument.
            if sys.getrefcount(obj) > 3:
                kept.append(obj)
        self._held = kept

    def held(self) -> int:
        return len(self._held)

    def flush(self) -> None:
        """Release everything held and collect fully (workers have stopped)."""
        self._held.clear()
        self._full()

    def uninstall(self) -> None:
        """Undo :func:`install` (tests of the collector itself)."""
        global _instance
        self._timer.stop()
        self.flush()
        gc.collect = _original_collect  # type: ignore[assignment]
        if self._watch in gc.callbacks:
            gc.callbacks.remove(self._watch)
        gc.enable()
        if _instance is self:
            _instance = None


def install(interval_ms: int = TICK_MS) -> GuiThreadCollector:
    """The process's collector, created on first use (in the GUI thread)."""
    global _instance
    if _instance is not None:
        return _instance
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before installing the collector")
    if QThread.currentThread() is not app.thread():
        raise RuntimeError("the collector must be installed from the GUI thread")
    _instance = GuiThreadCollector(app, interval_ms)
    return _instance


def instance() -> GuiThreadCollector | None:
    return _instance


def release_later(*objects: Any) -> None:
    """Hand objects a worker may still hold to the GUI thread for release."""
    if _instance is not None:
        _instance.release_later(*objects)
