"""GUI fixtures: a real session, runner, workspace and settings per test."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QThreadPool

from explorer.gui.context import AppContext
from explorer.gui.runner import JobRunner
from explorer.gui.session import Session
from explorer.store import Workspace


@pytest.fixture(autouse=True)
def _no_thread_left_running(qapp):
    """Fail a test that leaves a worker running (napari's dangling-thread idea)."""
    yield
    assert QThreadPool.globalInstance().waitForDone(5000), "a job was left running"


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
