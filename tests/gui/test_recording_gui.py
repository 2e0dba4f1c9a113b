"""Recording live views to GIF and "Copy image", driven like a user."""

from __future__ import annotations

from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from explorer.core import models
from explorer.gui.widgets import recorder as recorder_module
from explorer.gui.widgets.copy_image import COPY_TEXT
from explorer.gui.widgets.image_grid import ImageGrid
from explorer.gui.widgets.plots import BarChart
from explorer.gui.widgets.recorder import RECORD_TEXT, RecordControl

TIMEOUT = 30_000


@pytest.fixture
def save_to(monkeypatch, tmp_path):
    """The file dialog answers with a path the test chooses ('' = cancel)."""
    answer = {"path": str(tmp_path / "rec.gif")}
    monkeypatch.setattr(recorder_module, "ask_path", lambda _parent: answer["path"])
    return answer


def _stop_and_save(qtbot, control: RecordControl) -> str:
    with qtbot.waitSignal(control.saved, timeout=TIMEOUT) as saved:
        qtbot.mouseClick(control.button, Qt.MouseButton.LeftButton)
    return saved.args[0]


def _gif(path: str) -> np.ndarray:
    return iio.imread(path, index=None)


def test_record_attack_lab_live_view_during_an_attack(qtbot, ctx, fmnist, save_to):
    from explorer.gui.panels.attack_lab.panel import AttackLabPanel

    panel = AttackLabPanel(ctx)
    qtbot.addWidget(panel)
    panel.resize(1130, 740)
    panel.show()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(models.load_builtin("fmnist-cnn-standard"),
                          "fmnist-cnn-standard")
    panel.picker.select_first(2)
    panel.attack_form.choose("pgd", {"steps": 8, "alpha": 0.01, "norm": "linf",
                                     "targeted": "none", "restarts": 1})
    control = panel.live_box.record
    view = panel.live
    qtbot.mouseClick(control.button, Qt.MouseButton.LeftButton)
    assert control.button.isChecked()
    assert control.recorder.recording
    with qtbot.waitSignal(panel.live_finished, timeout=TIMEOUT):
        panel.run_button.click()
    # the finished result is painted in a later pass: wait for its frame
    qtbot.waitUntil(lambda: len(control.recorder.frames) >= 2, timeout=TIMEOUT)
    count = len(control.recorder.frames)
    path = _stop_and_save(qtbot, control)
    assert path == save_to["path"]
    frames = _gif(path)
    assert frames.shape[0] >= count >= 2
    assert frames.shape[1:3] == (view.height(), view.width())
    assert not np.array_equal(frames[0], frames[-1])  # the attack is in it
    assert control.button.text() == RECORD_TEXT
    assert "saved rec.gif" in control.label.text()


def test_record_training_curves_as_they_grow(qtbot, training_page, save_to):
    page = training_page
    page.show()
    control = page.record
    qtbot.mouseClick(control.button, Qt.MouseButton.LeftButton)
    page.curves.reset(3)
    for epoch in range(1, 4):  # the epochs a training job reports
        page.curves.add_epoch("train_loss", epoch, 1.0 / epoch)
        page.curves.add_epoch("train_acc", epoch, 50 + 10 * epoch)
        page.curves.redraw()
        n = len(control.recorder.frames)
        qtbot.waitUntil(lambda n=n: len(control.recorder.frames) > n, timeout=TIMEOUT)
    frames = _gif(_stop_and_save(qtbot, control))
    assert frames.shape[0] >= 4  # the start and one per epoch drawn
    assert frames.shape[1:3] == (page.curves.height(), page.curves.width())


def test_record_playground_while_it_trains(qtbot, ctx, save_to, tmp_path):
    from explorer.gui.panels.playground.panel import PlaygroundPanel

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    panel = PlaygroundPanel(ctx)
    qtbot.addWidget(panel)
    panel.resize(1130, 760)
    panel.show()
    try:
        qtbot.waitUntil(lambda: panel.shown_step == 0 and not panel.running,
                        timeout=10_000)
        control = panel.record
        save_to["path"] = str(tmp_path / "play.gif")
        qtbot.mouseClick(control.button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(panel.controls.buttons["Play"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(control.recorder.frames) >= 2, timeout=TIMEOUT)
        panel.pause()
        qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
        frames = _gif(_stop_and_save(qtbot, control))
        shown = control.recorder.widget
        assert frames.shape[0] >= 2
        assert frames.shape[1:3] == (shown.height(), shown.width())
        assert shown.isAncestorOf(panel.views[0])
        assert shown.isAncestorOf(panel.views[1])
    finally:
        panel.pause()
        qtbot.waitUntil(lambda: not panel.running, timeout=10_000)
        torch.set_num_threads(before)


@pytest.fixture
def chart(qtbot):
    c = BarChart("accuracy", "%")
    qtbot.addWidget(c)
    c.resize(320, 240)
    c.set_values([10, 80, 45], ["a", "b", "c"])
    c.show()
    qtbot.waitExposed(c)
    return c


def _copy_action(widget):
    (action,) = [a for a in widget.actions() if a.text() == COPY_TEXT]
    return action


def test_copy_image_copies_the_plot_at_its_size(qtbot, chart):
    # (Ctrl+C is the window's Edit → Copy: tests/gui/test_menus.py)
    clipboard = QApplication.clipboard()
    clipboard.clear()
    _copy_action(chart).trigger()
    image = clipboard.image()
    assert not image.isNull()
    assert (image.width(), image.height()) == (320, 240)


def test_copy_image_is_in_the_plots_own_context_menu(qtbot, chart):
    # pyqtgraph's menus end with the scene's entries ("Export...", ours)
    texts = [a.text() for a in chart.scene().contextMenu]
    assert COPY_TEXT in texts
    box = chart.getPlotItem().getViewBox()
    event = SimpleNamespace(acceptedItem=box)  # what a right click carries
    menu = chart.scene().addParentContextMenus(box, box.getMenu(event), event)
    (entry,) = [a for a in menu.actions() if a.text() == COPY_TEXT]
    QApplication.clipboard().clear()
    entry.trigger()
    image = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (320, 240)


def test_copy_image_of_an_image_grid(qtbot):
    grid = ImageGrid(columns=4, tile=32)
    qtbot.addWidget(grid)
    rng = np.random.default_rng(0)
    grid.set_images([rng.random((8, 8)) for _ in range(4)], list("abcd"))
    grid.show()
    qtbot.waitExposed(grid)
    assert grid.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    QApplication.clipboard().clear()
    _copy_action(grid).trigger()
    image = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (grid.width(), grid.height())


@pytest.mark.parametrize(
    ("answer", "needle"),
    [("", "discarded"), ("rec.png", ".gif or .mp4")],
)
def test_cancel_or_a_bad_file_says_so(qtbot, chart, save_to, tmp_path, answer,
                                      needle):
    control = RecordControl(chart)
    qtbot.addWidget(control)
    save_to["path"] = str(tmp_path / answer) if answer else ""
    qtbot.mouseClick(control.button, Qt.MouseButton.LeftButton)
    assert len(control.recorder.frames) == 1
    qtbot.mouseClick(control.button, Qt.MouseButton.LeftButton)
    assert needle in control.label.text()
    assert list(tmp_path.glob("rec.*")) == []
