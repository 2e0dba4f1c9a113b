"""GUI fixtures: a real session, runner, workspace and settings per test, and
the mini Fashion-MNIST test split the pages are driven on."""

from __future__ import annotations

import pytest
from gui_helpers import check_models
from PySide6.QtCore import QSettings, QThreadPool

from explorer.core import data
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


@pytest.fixture(scope="module")
def fmnist():
    """The built-in data set's test split (pages get it as the session's)."""
    return data.load("fashion-mnist-mini", "test")


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


@pytest.fixture
def one_thread():
    """One intra-op thread, as the app runs jobs (the other core draws the UI):
    two threads on a busy two-core machine spin and run many times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def evaluate_page(qtbot, ctx, fmnist, one_thread):
    """Opens the Evaluate page on the mini test split: ``evaluate_page(values,
    options=…, checked=[names], show=True)``. Whatever job it or its tabs
    still run is cancelled and waited for at the end."""
    from explorer.gui.panels.evaluate.panel import EvaluatePanel

    opened = []

    def open_page(values: dict, *, options: dict | None = None,
                  checked: list[str] | None = None, show: bool = False):
        page = EvaluatePanel(ctx)
        qtbot.addWidget(page)
        page.resize(1130, 760)
        if show:
            page.show()
        ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
        page.settings_box.set_values(values)
        if options is not None:
            page.options = dict(options)
        if checked is not None:
            check_models(page, checked)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        for handle in (page.handle, page.transfer.handle, page.corruptions.handle,
                       page.remedy.job):
            if handle is not None and handle.running:
                with qtbot.waitSignal(handle.finished, timeout=20_000):
                    handle.cancel()


@pytest.fixture
def training_page(qtbot, ctx, fmnist):
    """The Training page on the mini test split, 1130×760; a run it still has
    at the end is stopped and waited for."""
    from explorer.gui.panels.training.panel import TrainingPanel

    page = TrainingPanel(ctx)
    qtbot.addWidget(page)
    page.resize(1130, 760)
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    yield page
    if page.handle is not None and page.handle.running:
        with qtbot.waitSignal(page.handle.finished, timeout=20_000):
            page.stop()


@pytest.fixture
def loaded_window(qtbot, one_thread):
    """Main windows opened as app.run does (show, then load), each returned
    once its Data & Model page has evaluated; closed afterwards. Keyword
    arguments go to MainWindow (``tour=True`` is an interactive launch's)."""
    from explorer.gui.main_window import MainWindow

    windows: list[MainWindow] = []

    def open_(**kwargs) -> MainWindow:
        window = MainWindow(ask_on_close=False, **kwargs)
        qtbot.addWidget(window)
        window.show()
        window.finish_loading()
        with qtbot.waitSignal(window.data_panel.evaluated, timeout=60_000):
            pass
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.close()
