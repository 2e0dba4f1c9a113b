"""GUI fixtures: a real session, runner, workspace and settings per test."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QThreadPool

from explorer.gui import collector
from explorer.gui.context import AppContext
from explorer.gui.runner import JobRunner
from explorer.gui.session import Session
from explorer.store import Workspace


@pytest.fixture(scope="session", autouse=True)
def _gui_thread_collector(qapp):
    """Garbage collection in the GUI thread only, as in the application."""
    return collector.install()


@pytest.fixture(autouse=True)
def _no_thread_left_running(qapp, _gui_thread_collector):
    """Fail a test that leaves a worker running (napari's dangling-thread idea),
    or during which the garbage collector ran outside the GUI thread."""
    before = _gui_thread_collector.worker_collections
    yield
    assert QThreadPool.globalInstance().waitForDone(5000), "a job was left running"
    _gui_thread_collector.sweep()
    _gui_thread_collector.collect_due()
    ran = _gui_thread_collector.worker_collections - before
    assert ran == 0, (
        f"garbage collection ran {ran}x outside the GUI thread "
        f"({', '.join(_gui_thread_collector.offenders[-ran:])})"
    )


@pytest.fixture
def settings(tmp_path):
    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    yield s
    s.sync()


@pytest.fixture
def ctx(qapp, tmp_path, settings):
    import torch

    runner = JobRunner()
    ws = Workspace.open(tmp_path / "ws")
    context = AppContext(Session(torch.device("cpu")), runner, ws, settings)
    yield context
    runner.shutdown(5000)
    ws.close()


@pytest.fixture
def evaluated_data_panel(qtbot, ctx):
    """The Data & Model page, shown, after its first evaluation."""
    from explorer.gui.panels.data_model.panel import DataModelPanel

    page = DataModelPanel(ctx)
    qtbot.addWidget(page)
    page.resize(1100, 750)
    page.show()
    with qtbot.waitSignal(page.evaluated, timeout=60_000):
        pass
    return page
