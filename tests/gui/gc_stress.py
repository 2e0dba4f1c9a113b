"""Stress the Qt-teardown rule: widgets die in the GUI thread while jobs churn.

Run as a script (the test starts it in a subprocess, so a deadlock is a
timeout, not a hung suite)::

    python tests/gui/gc_stress.py --rounds 300 [--unguarded]

Each round the GUI thread builds and drops a few widgets that only the
cyclic collector can free (a plot with axis labels, a menu with actions,
a widget whose slot refers back to it), and two jobs run through the app's
own :class:`~explorer.gui.runner.JobRunner`: they allocate cyclic garbage,
call ``gc.collect()`` themselves, and hold closures that refer to Qt
objects. ``--unguarded`` turns the GUI-thread collector off afterwards (the
control: the old behaviour). A stuck run dumps every thread's stack and
exits 1 (faulthandler's watchdog).
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import os
import sys
import threading
import weakref

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication, QMenu, QPushButton, QWidget

from explorer.core.jobs import Done, Progress
from explorer.gui import collector
from explorer.gui.runner import JobRunner


def churn_job(rounds: int, keep_alive, *, token):
    """Allocate reference cycles and ask for collections, in the worker."""
    junk = []
    for i in range(rounds):
        token.check()
        for _ in range(400):
            a: list = []
            b = [a]
            a.append(b)  # a cycle only the collector frees
            junk.append(a)
        if i % 5 == 0:
            junk.clear()
            gc.collect()
        yield Progress(i + 1, rounds)
    yield Done({"rounds": rounds, "alive": keep_alive() is not None})


class SelfReferring(QWidget):
    """A widget in a reference cycle through its own attributes."""

    poked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.button = QPushButton("x", self)
        self.poked.connect(self.button.click)
        self.me = self


FREED_IN: dict[str, int] = {}
FREED_KIND: dict[str, int] = {}


def _freed(kind: str) -> None:
    name = threading.current_thread().name
    FREED_IN[name] = FREED_IN.get(name, 0) + 1
    FREED_KIND[kind] = FREED_KIND.get(kind, 0) + 1


def watch(*objects: object) -> None:
    """Count, per thread, where each object is finally freed."""
    for obj in objects:
        weakref.finalize(obj, _freed, type(obj).__name__)


class Driver(QObject):
    def __init__(self, rounds: int, unguarded: bool) -> None:
        super().__init__()
        import pyqtgraph as pg

        self.pg = pg
        self.rounds, self.done_rounds = rounds, 0
        self.runner = JobRunner(self)
        if unguarded:
            collector.instance().uninstall()
        self.handles: list = []
        self.timer = QTimer(self)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self.step)
        self.timer.start()

    @Slot()
    def noop(self) -> None:
        pass

    @Slot()
    def step(self) -> None:
        # Widgets dropped without deleteLater: left for the cyclic collector.
        plot = self.pg.PlotWidget()
        plot.setLabel("left", "accuracy", units="%")
        plot.plot([1, 2, 3])
        menu = QMenu()
        for name in ("a", "b", "c"):
            menu.addAction(name).triggered.connect(self.noop)
        widget = SelfReferring()
        watch(plot, menu, widget)
        cycle = [plot, menu, widget]
        cycle.append(cycle)
        del plot, menu, widget, cycle
        if len(self.runner.active()) < 2:
            # A widget only the job's closure refers to: its last reference
            # goes when the job is done with it.
            held = QPushButton("held")
            held.clicked.connect(self.noop)
            watch(held)
            self.handles.append(
                self.runner.start(
                    churn_job, name=f"churn {self.done_rounds}",
                    slot=f"churn {self.done_rounds % 2}",
                    job_args=(20, lambda h=held: h),
                )
            )
        self.done_rounds += 1
        if self.done_rounds >= self.rounds:
            self.timer.stop()
            self.runner.shutdown(10_000)
            QApplication.instance().quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--unguarded", action="store_true")
    parser.add_argument("--stuck-after", type=float, default=90.0)
    args = parser.parse_args(argv)
    faulthandler.dump_traceback_later(args.stuck_after, exit=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    collector.install()
    driver = Driver(args.rounds, args.unguarded)
    app.exec()
    faulthandler.cancel_dump_traceback_later()
    gui = collector.instance()
    if gui is not None:
        gui.flush()
    worker_runs = gui.worker_collections if gui is not None else -1
    foreign = sum(n for name, n in FREED_IN.items() if name != "MainThread")
    sys.stdout.write(
        f"rounds {driver.done_rounds} jobs {len(driver.handles)} "
        f"worker_collections {worker_runs} freed {sum(FREED_IN.values())} "
        f"freed_outside_gui_thread {foreign} {FREED_KIND}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
