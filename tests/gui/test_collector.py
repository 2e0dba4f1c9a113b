"""Qt objects are destroyed only in the GUI thread (explorer.gui.collector)."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from explorer.core.jobs import Done, Progress
from explorer.gui import collector

STRESS = Path(__file__).with_name("gc_stress.py")


def _freed_in(obj: object) -> list[str]:
    """A list that receives the name of the thread that frees ``obj``."""
    where: list[str] = []
    weakref.finalize(obj, lambda: where.append(threading.current_thread().name))
    return where


def test_automatic_collection_is_off_and_stays_off(qtbot):
    gui = collector.install()
    assert not gc.isenabled()
    gc.enable()  # a library that turns it back on
    gui.tick()
    assert not gc.isenabled()


def test_gc_collect_in_a_worker_thread_runs_in_the_gui_thread(qtbot):
    gui = collector.install()
    before_requests, before_runs = gui.deferred_requests, gui.worker_collections
    results = []
    worker = threading.Thread(target=lambda: results.append(gc.collect()))
    worker.start()
    worker.join()
    assert results == [0]
    assert gui.deferred_requests == before_requests + 1
    assert gui.worker_collections == before_runs
    gui.tick()  # the deferred collection, here
    assert gui.worker_collections == before_runs


def test_cycles_are_still_collected_by_the_gui_timer(qtbot):
    gui = collector.install()
    assert gui._timer.isActive()
    assert gui._timer.interval() <= 200

    class Node:
        pass

    node = Node()
    node.me = node  # a cycle: only the collector frees it
    where = _freed_in(node)
    del node
    junk = [[] for _ in range(2 * gc.get_threshold()[0])]
    # CPython's own rule: a generation-0 collection is due (frees of older
    # objects lower this count too, so the test checks it before the tick).
    assert gc.get_count()[0] > gc.get_threshold()[0]
    gui.tick()  # what the timer calls, in the GUI thread
    assert where == ["MainThread"]
    del junk


def _job_holding(keep, *, token):
    yield Progress(1, 1)
    yield Done({"kept": keep() is not None})


def test_a_widget_only_a_job_refers_to_is_freed_in_the_gui_thread(qtbot, ctx):
    button = QPushButton("held by the job")
    where = _freed_in(button)
    handle = ctx.runner.start(_job_holding, name="hold", job_args=(lambda b=button: b,))
    del button
    with qtbot.waitSignal(handle.done, timeout=10_000) as done:
        pass
    assert done.args == [{"kept": True}]
    qtbot.waitUntil(lambda: bool(where), timeout=3000)
    assert where == ["MainThread"]


def test_the_superqt_worker_is_released_in_the_gui_thread(qtbot, ctx):
    handle = ctx.runner.start(_job_holding, name="worker", job_args=(lambda: 1,))
    worker_freed = _freed_in(handle._worker)
    signals_freed = _freed_in(handle._worker.signals)
    with qtbot.waitSignal(handle.finished, timeout=10_000):
        pass
    qtbot.waitUntil(lambda: bool(worker_freed and signals_freed), timeout=3000)
    assert worker_freed == ["MainThread"]
    assert signals_freed == ["MainThread"]


def _stress(*flags: str, rounds: int = 300) -> tuple[int, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    proc = subprocess.run(
        [sys.executable, str(STRESS), "--rounds", str(rounds),
         "--stuck-after", "60", *flags],
        capture_output=True, text=True, timeout=150, env=env,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_stress_widgets_die_while_jobs_allocate_and_collect():
    """Hundreds of widgets left to the collector while two jobs churn garbage
    and call gc.collect() themselves: no hang, no crash, all freed here."""
    code, output = _stress()
    assert code == 0, output[-4000:]
    found = re.search(
        r"rounds (\d+) jobs (\d+) worker_collections (\d+) freed (\d+) "
        r"freed_outside_gui_thread (\d+)", output,
    )
    assert found, output[-2000:]
    rounds, jobs, worker_runs, freed, outside = map(int, found.groups())
    assert rounds == 300
    assert jobs >= 50
    assert freed >= 3 * rounds  # every dropped widget was really freed
    assert worker_runs == 0
    assert outside == 0


@pytest.mark.slow
def test_stress_control_without_the_collector_breaks():
    """The control: the same run with the collector off crashes, hangs or frees
    widgets in worker threads, so the test above can fail."""
    code, output = _stress("--unguarded", rounds=150)
    outside = re.search(r"freed_outside_gui_thread (\d+)", output)
    assert code != 0 or (outside and int(outside.group(1)) > 0), output[-2000:]
