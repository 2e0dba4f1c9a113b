"""The main window shell, driven like a user: start-up, menus, drops, jobs, quit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QThreadPool, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from explorer.core import models
from explorer.core.data.idx import write_idx
from explorer.core.jobs import Progress
from explorer.gui.main_window import MainWindow
from explorer.store import Workspace

EVAL_TIMEOUT_MS = 60_000


def _endless_accuracy(model, dataset, *, device, token):
    """Stands in for clean_accuracy: runs until the user cancels it."""
    yield Progress(0, 100, "clean accuracy")
    while True:
        token.check()
        time.sleep(0.005)


@pytest.fixture
def open_window(qtbot):
    """Open main windows the way app.run does: show, then finish loading."""
    windows: list[MainWindow] = []

    def open_(**kwargs) -> MainWindow:
        kwargs.setdefault("ask_on_close", False)
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        window.show()
        window.finish_loading()
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.ask_on_close = False
        window.close()


def _wait_evaluated(qtbot, window: MainWindow) -> dict:
    with qtbot.waitSignal(window.data_panel.evaluated, timeout=EVAL_TIMEOUT_MS) as b:
        pass
    return b.args[0]


def _menu_action(window: MainWindow, text: str):
    for menu_action in window.menuBar().actions():
        for action in menu_action.menu().actions():
            if action.text() == text:
                return action
    raise AssertionError(f"no menu action {text!r}")


def _no_dialog(*args, **kwargs):
    raise AssertionError(f"unexpected dialog: {args[1:3]}")


# -- start-up ---------------------------------------------------------------------
def test_window_builds_with_panels_device_and_workspace(qtbot, open_window):
    window = open_window()
    assert [window.nav.item(i).text() for i in range(window.nav.count())] == [
        "Data & Model", "Attack Lab", "Training", "Evaluate & Compare",
        "Playground", "Look Inside", "Denoiser Lab", "Certify & Detect",
    ]
    assert window.stack.currentWidget() is window.data_panel
    assert window.nav.currentRow() == 0
    assert window.device_label.text().startswith("Device: cpu")
    home = os.environ["EXPLORER_HOME"]
    assert window.workspace_label.text() == f"Workspace: {home}"
    assert window.ctx.workspace.path == Path(home)
    result = _wait_evaluated(qtbot, window)
    assert result["n"] == 1000
    assert result["clean_acc"] > 0.8
    assert window.jobs_bar.idle.isVisible()


def test_loaded_is_emitted_after_the_panels_exist(qtbot):
    window = MainWindow(ask_on_close=False)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.loaded, timeout=EVAL_TIMEOUT_MS):
        window.finish_loading()
    assert "data" in window.panels
    window.close()


def test_choices_and_geometry_are_kept_between_launches(qtbot, open_window):
    first = open_window()
    _wait_evaluated(qtbot, first)
    # The panels need ~1230 px of width and the offscreen screen is 800 px
    # wide, so only the height can show a restored size.
    first.resize(first.width(), 700)
    first.data_panel.split_combo.setCurrentText("train")
    qtbot.waitUntil(lambda: first.ctx.session.split == "train", timeout=10_000)
    assert first.close()

    second = open_window()
    assert second.height() == 700
    assert second.data_panel.split_combo.currentText() == "train"
    assert second.stack.currentWidget() is second.data_panel
    qtbot.waitUntil(lambda: second.ctx.session.split == "train", timeout=10_000)
    assert len(second.ctx.session.dataset) == 6000


def test_unknown_last_panel_falls_back_to_the_first(qtbot, open_window):
    from explorer.gui import settings as settings_mod

    s = settings_mod.open_settings()
    s.setValue("window/panel", "no-such-panel")
    s.sync()
    window = open_window()
    assert window.stack.currentWidget() is window.data_panel
    _wait_evaluated(qtbot, window)


# -- drag and drop ------------------------------------------------------------------
def _drop(target, path: Path) -> tuple[bool, bool]:
    """Drag ``path`` over ``target`` and drop it; returns (enter, drop) accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    action = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(QPoint(10, 10), action, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False, False
    drop = QDropEvent(QPointF(10, 10), action, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return True, drop.isAccepted()


def _save_builtin(path: Path) -> Path:
    return models.save(models.load_builtin("fmnist-cnn-standard"), path)


def test_dropping_a_weights_file_loads_it(qtbot, open_window, tmp_path):
    weights = _save_builtin(tmp_path / "dropped.safetensors")
    window = open_window()
    _wait_evaluated(qtbot, window)
    box = window.data_panel.model_box
    # dropped onto the panel: the window takes it
    assert _drop(window.data_panel, weights) == (True, True)
    assert box.combo.currentText() == "dropped.safetensors"
    assert box.combo.currentData() == str(weights.resolve())
    result = _wait_evaluated(qtbot, window)
    assert window.ctx.session.model_source == "dropped.safetensors"
    assert result["clean_acc"] > 0.8


def test_dropping_a_text_file_is_refused(qtbot, open_window, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    window = open_window()
    _wait_evaluated(qtbot, window)
    assert _drop(window, notes) == (False, False)
    assert window.data_panel.model_box.combo.currentData() == "fmnist-cnn-standard"
    assert window.ctx.runner.active() == []


# -- File menu ----------------------------------------------------------------------
def test_file_open_model(qtbot, open_window, tmp_path, monkeypatch):
    weights = _save_builtin(tmp_path / "menu.safetensors")
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(weights), "Models"))
    window = open_window()
    _wait_evaluated(qtbot, window)
    _menu_action(window, "Open model…").trigger()
    result = _wait_evaluated(qtbot, window)
    assert window.ctx.session.model_source == "menu.safetensors"
    assert window.data_panel.model_box.combo.currentText() == "menu.safetensors"
    assert result["clean_acc"] > 0.8


def test_file_open_model_cancelled_changes_nothing(qtbot, open_window, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    window = open_window()
    _wait_evaluated(qtbot, window)
    _menu_action(window, "Open model…").trigger()
    assert window.ctx.runner.active() == []
    assert window.ctx.session.model_source == "fmnist-cnn-standard"


def test_show_workspace_folder_and_about(qtbot, open_window, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from explorer import __version__
    from explorer.gui.about import AboutDialog

    opened, about = [], []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url))
    monkeypatch.setattr(AboutDialog, "exec", lambda self: about.append(self.text()))
    window = open_window()
    _menu_action(window, "Show workspace folder").trigger()
    assert opened == [QUrl.fromLocalFile(os.environ["EXPLORER_HOME"])]
    _menu_action(window, "About").trigger()
    assert __version__ in about[0]
    _wait_evaluated(qtbot, window)


def _write_mnist(root: Path, n: int = 20) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte",
                  (np.arange(n) % 10).astype(np.uint8))
    return root


def test_file_open_data_folder(qtbot, open_window, tmp_path, monkeypatch):
    folder = _write_mnist(tmp_path / "my-mnist")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(folder))
    window = open_window()
    _wait_evaluated(qtbot, window)
    _menu_action(window, "Open data folder…").trigger()
    result = _wait_evaluated(qtbot, window)
    session = window.ctx.session
    assert session.data_name == "mnist"
    assert len(session.dataset) == 20
    assert result["n"] == 20
    assert window.data_panel.current_data() == "mnist"
    assert window.data_panel.folder_label.text() == str(folder)


def test_choose_workspace_switches_where_runs_land(qtbot, open_window, tmp_path,
                                                  monkeypatch):
    other = tmp_path / "other-workspace"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(other))
    window = open_window()
    _wait_evaluated(qtbot, window)
    first = window.ctx.workspace
    _menu_action(window, "Choose workspace…").trigger()
    assert window.workspace_label.text() == f"Workspace: {other}"
    assert window.ctx.workspace.path == other
    assert first.closed
    window.data_panel.eval_button.click()
    _wait_evaluated(qtbot, window)
    window.close()
    with Workspace.open(other) as ws:
        runs = ws.runs(kind="eval")
    assert len(runs) == 1
    assert runs[0].status == "finished"
    with Workspace.open(os.environ["EXPLORER_HOME"]) as ws:
        assert len(ws.runs(kind="eval")) == 1


def test_choose_workspace_while_a_run_records_keeps_its_outcome(
        qtbot, open_window, tmp_path, monkeypatch):
    other = tmp_path / "other-workspace"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(other))
    window = open_window()
    panel = window.data_panel
    _wait_evaluated(qtbot, window)
    monkeypatch.setattr("explorer.gui.panels.data_model.panel.clean_accuracy",
                        _endless_accuracy)
    panel.eval_button.click()
    job = panel._eval_job
    first = window.ctx.workspace
    _menu_action(window, "Choose workspace…").trigger()
    assert window.ctx.workspace.path == other
    assert not first.closed  # the running evaluation still records into it
    with qtbot.waitSignal(job.finished, timeout=10_000):
        panel.cancel_button.click()
    assert first.closed
    window.close()
    with Workspace.open(os.environ["EXPLORER_HOME"]) as ws:
        statuses = [r.status for r in ws.runs(kind="eval")]
    assert statuses == ["cancelled", "finished"]


def test_choose_a_file_as_workspace_is_refused(qtbot, open_window, tmp_path,
                                              monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(not_a_folder))
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda *a, **k: warnings.append(a[2]))
    window = open_window()
    _wait_evaluated(qtbot, window)
    home = os.environ["EXPLORER_HOME"]
    _menu_action(window, "Choose workspace…").trigger()
    assert len(warnings) == 1
    assert str(not_a_folder) in warnings[0]
    # the workspace in use is unchanged, and the label says so
    assert window.workspace_label.text() == f"Workspace: {home}"
    assert not window.ctx.workspace.closed
    window.data_panel.eval_button.click()
    _wait_evaluated(qtbot, window)


def test_bad_workspace_still_opens(qtbot, open_window, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("EXPLORER_HOME", str(not_a_folder))
    # start-up must not block on a modal dialog (unattended runs would hang)
    monkeypatch.setattr(QMessageBox, "warning", _no_dialog)
    window = open_window()
    text = window.workspace_label.text()
    assert text.startswith("Workspace unavailable:")
    assert "is a file" in text
    assert str(not_a_folder) in text
    assert window.ctx.workspace is None
    result = _wait_evaluated(qtbot, window)
    assert result["clean_acc"] > 0.8
    assert window.close()


# -- status bar jobs ----------------------------------------------------------------
def block_until_cancelled(*, token):
    yield Progress(0, 1, "waiting")
    while True:
        token.check()
        time.sleep(0.005)


def test_running_job_shows_a_chip_that_cancels_it(qtbot, open_window):
    window = open_window()
    _wait_evaluated(qtbot, window)
    bar = window.jobs_bar
    assert bar.idle.isVisible()
    handle = window.ctx.runner.start(block_until_cancelled, name="long wait")
    chip = bar.chips[id(handle)]
    qtbot.waitUntil(chip.isVisible, timeout=5000)
    assert not bar.idle.isVisible()
    qtbot.waitUntil(lambda: chip.label.text() == "long wait", timeout=5000)
    with qtbot.waitSignal(handle.cancelled, timeout=5000):
        qtbot.mouseClick(chip.button, Qt.MouseButton.LeftButton)
    assert bar.chips == {}
    assert bar.idle.isVisible()
    assert window.ctx.runner.active() == []


def test_a_job_waiting_for_a_thread_shows_queued(qtbot, open_window):
    window = open_window()
    _wait_evaluated(qtbot, window)
    runner, bar = window.ctx.runner, window.jobs_bar
    threads = QThreadPool.globalInstance().maxThreadCount()
    handles = [runner.start(block_until_cancelled, name=f"job {i}")
               for i in range(threads + 1)]
    try:
        chips = [bar.chips[id(h)] for h in handles]
        qtbot.waitUntil(lambda: all(h.state == "running" for h in handles[:-1]),
                        timeout=5000)
        labels = [c.label.text() for c in chips]
        running = [f"job {i}" for i in range(threads)]
        assert labels == [*running, f"job {threads} (queued)"]
        with qtbot.waitSignal(handles[0].finished, timeout=5000):
            qtbot.mouseClick(chips[0].button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: chips[-1].label.text() == f"job {threads}",
                        timeout=5000)
        assert len(bar.chips) == threads
    finally:
        for handle in handles:
            handle.cancel()
    qtbot.waitUntil(lambda: bar.chips == {}, timeout=5000)
    assert bar.idle.isVisible()


# -- quitting -----------------------------------------------------------------------
def test_close_while_a_job_runs_asks_first(qtbot, open_window, monkeypatch):
    window = open_window(ask_on_close=True)
    panel = window.data_panel
    _wait_evaluated(qtbot, window)
    monkeypatch.setattr("explorer.gui.panels.data_model.panel.clean_accuracy",
                        _endless_accuracy)
    panel.eval_button.click()
    job = panel._eval_job
    run_id = window.ctx.workspace.runs(kind="eval")[0].id
    qtbot.waitUntil(lambda: job.state == "running", timeout=5000)

    questions = []

    def answer(button):
        def ask(parent, title, text, *args, **kwargs):
            questions.append(text)
            return button
        return ask

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    assert not window.close()
    assert window.isVisible()
    assert "clean accuracy" in questions[0]
    assert job.running
    assert not window.ctx.workspace.closed

    monkeypatch.setattr(QMessageBox, "question",
                        answer(QMessageBox.StandardButton.Yes))
    assert window.close()
    assert not window.isVisible()
    assert len(questions) == 2
    assert job.state == "cancelled"
    assert window.ctx.workspace.closed
    with Workspace.open(os.environ["EXPLORER_HOME"]) as ws:
        assert ws.get(run_id).status == "cancelled"


def test_close_without_jobs_does_not_ask(qtbot, open_window, monkeypatch):
    window = open_window(ask_on_close=True)
    _wait_evaluated(qtbot, window)
    monkeypatch.setattr(QMessageBox, "question", _no_dialog)
    assert window.close()


def test_torch_lazy_imports_are_warmed_up_in_the_background(qtbot, open_window):
    window = open_window()
    qtbot.waitUntil(lambda: window.warm_up_handle is not None, timeout=10_000)
    handle = window.warm_up_handle
    assert handle.background
    assert handle not in window.ctx.runner.active()  # not listed, never asked
    qtbot.waitUntil(lambda: handle.state == "done", timeout=60_000)
    # never a chip of its own (the page's first accuracy job may still show
    # one on a loaded machine: the bar lists only the runner's active jobs)
    assert id(handle) not in window.jobs_bar.chips
    assert all(not h.background for h in window.ctx.runner.active())


def test_a_page_asked_for_opens_first(qtbot, open_window):
    window = open_window(panel="training")
    assert window.stack.currentWidget() is window.panels["training"]
    assert window.nav.currentRow() == 2
