"""Edit, View and Help menus of the main window, driven like a user."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
import torch
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QCursor, QImage, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QFileDialog

import explorer
from explorer.gui import menus, theme
from explorer.gui.main_window import MainWindow
from explorer.gui.panels import PANELS


@pytest.fixture
def open_window(loaded_window):
    """Main windows (tests/gui/conftest.py's loaded_window); the application's
    font and theme are put back afterwards (they outlive a window)."""
    yield loaded_window
    fresh_process()


def fresh_process() -> None:
    """What a new process starts with: the base font, light theme and plots."""
    theme.apply_font(0)
    theme.apply_palette(False)
    theme.style_plots(False)


def action(window: MainWindow, path: str):
    """The action at ``"View › Larger font"`` in the menu bar."""
    *menus_, text = path.split(" › ")
    actions = window.menuBar().actions()
    for name in menus_:
        menu = next(a.menu() for a in actions if a.text().replace("&", "") == name)
        actions = menu.actions()
    return next(a for a in actions if a.text() == text)


def modal_text(qtbot, trigger, read) -> str:
    """Trigger an action that opens a modal dialog; read it and close it."""
    seen: list = []

    def grab() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, grab)
            return
        seen.append(read(dialog))
        dialog.accept()

    QTimer.singleShot(0, grab)
    trigger()
    assert seen, "no dialog opened"
    return seen[0]


def activate(qtbot, window: MainWindow) -> None:
    """Focus needs an active window (a user's click gives it one)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def visible_plot(page) -> pg.PlotWidget:
    return next(p for p in page.findChildren(pg.PlotWidget) if p.isVisible())


def plot_background(widget: pg.GraphicsView):
    return widget.backgroundBrush().color()


# -- the menus ---------------------------------------------------------------------
def test_edit_view_help_menus_have_their_actions_with_shortcuts(qtbot, open_window):
    window = open_window()
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Edit", "View", "Help"]
    keys = {path: action(window, path).shortcut() for path in (
        "Edit › Copy", "View › Full screen", "View › Larger font",
        "View › Smaller font", "View › Reset font size",
    )}
    assert keys["Edit › Copy"] == QKeySequence(QKeySequence.StandardKey.Copy)
    assert keys["View › Full screen"] == QKeySequence("Ctrl+Shift+F")
    assert keys["View › Larger font"] == QKeySequence("Ctrl++")
    assert keys["View › Smaller font"] == QKeySequence("Ctrl+-")
    assert keys["View › Reset font size"] == QKeySequence("Ctrl+0")
    assert action(window, "Edit › Export…") is not None
    assert action(window, "View › Dark theme").isCheckable()
    for number, spec in enumerate(PANELS, start=1):
        page = action(window, f"View › Pages › {spec.title.replace('&', '&&')}")
        assert page.shortcut() == QKeySequence(f"Ctrl+{number}")
    action(window, "View › Pages › Training").trigger()
    assert window.stack.currentWidget() is window.panels["training"]
    assert window.nav.currentRow() == 2


def test_full_screen_toggles(qtbot, open_window):
    window = open_window()
    full = action(window, "View › Full screen")
    full.trigger()
    qtbot.waitUntil(window.isFullScreen, timeout=5000)
    assert full.isChecked()
    full.trigger()
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=5000)
    window.showFullScreen()  # by other means (presenter mode): the tick follows
    qtbot.waitUntil(full.isChecked, timeout=5000)
    window.showNormal()
    qtbot.waitUntil(lambda: not full.isChecked(), timeout=5000)


# -- font size ---------------------------------------------------------------------
def test_font_size_steps_and_is_remembered_by_a_new_window(qtbot, open_window):
    window = open_window()
    base = QApplication.font().pointSizeF()
    action(window, "View › Larger font").trigger()
    action(window, "View › Larger font").trigger()
    assert QApplication.font().pointSizeF() == base + 2
    qtbot.waitUntil(lambda: window.data_panel.font().pointSizeF() == base + 2,
                    timeout=5000)  # the widgets follow
    action(window, "View › Smaller font").trigger()
    assert QApplication.font().pointSizeF() == base + 1
    window.close()

    fresh_process()
    assert QApplication.font().pointSizeF() == base
    second = open_window()
    assert QApplication.font().pointSizeF() == base + 1
    action(second, "View › Reset font size").trigger()
    assert QApplication.font().pointSizeF() == base
    second.close()
    fresh_process()
    open_window()
    assert QApplication.font().pointSizeF() == base


def test_a_bad_saved_font_step_is_ignored(qtbot, open_window):
    from explorer.gui import settings as settings_mod

    base = QApplication.font().pointSizeF()
    settings_mod.open_settings().setValue(theme.FONT_KEY, "huge")
    open_window()
    assert QApplication.font().pointSizeF() == base


# -- dark theme --------------------------------------------------------------------
def test_dark_theme_recolours_widgets_and_plots_and_is_remembered(qtbot, open_window):
    window = open_window()
    plot = visible_plot(window.data_panel)
    assert plot is not None
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 150
    assert plot_background(plot).lightness() > 200
    dark = action(window, "View › Dark theme")
    assert not dark.isChecked()
    dark.trigger()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert plot_background(plot).lightness() < 60
    assert pg.PlotWidget().backgroundBrush().color().lightness() < 60  # new plots
    window.close()

    fresh_process()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 150
    second = open_window()
    assert action(second, "View › Dark theme").isChecked()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert plot_background(visible_plot(second.data_panel)).lightness() < 60
    action(second, "View › Dark theme").trigger()
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 150
    assert plot_background(visible_plot(second.data_panel)).lightness() > 200


# -- Edit --------------------------------------------------------------------------
def test_copy_takes_the_plot_with_the_focus_else_the_page(qtbot, open_window):
    window = open_window()
    activate(qtbot, window)
    QCursor.setPos(window.mapToGlobal(QPoint(5, 5)))  # over the menu bar
    page = window.data_panel
    page.setFocus()
    QApplication.clipboard().clear()
    action(window, "Edit › Copy").trigger()
    image: QImage = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (page.width(), page.height())
    assert "page" in window.statusBar().currentMessage()

    plot = visible_plot(page)
    plot.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is plot, timeout=5000)
    action(window, "Edit › Copy").trigger()
    image = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (plot.width(), plot.height())
    assert image.pixelColor(2, 2).lightness() > 200  # the plot's white background
    assert "picture" in window.statusBar().currentMessage()
    # the key itself: the views' own "Copy image" entries add no second
    # Ctrl+C, which would make it ambiguous (Qt then fires neither)
    QApplication.clipboard().clear()
    qtbot.keyClick(plot, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    image = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (plot.width(), plot.height())


def test_export_saves_a_png_of_a_page_without_its_own_export(qtbot, open_window,
                                                             tmp_path, monkeypatch):
    window = open_window()
    target = tmp_path / "page"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(target), "PNG image (*.png)"))
    action(window, "Edit › Export…").trigger()
    saved = QImage(str(tmp_path / "page.png"))
    assert (saved.width(), saved.height()) == (window.data_panel.width(),
                                               window.data_panel.height())
    assert "Saved the page" in window.statusBar().currentMessage()

    missing = tmp_path / "no-such-folder" / "page.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(missing), "PNG image (*.png)"))
    action(window, "Edit › Export…").trigger()
    assert not missing.exists()
    assert window.statusBar().currentMessage() == f"Could not write {missing}"


def test_export_uses_the_evaluate_pages_report_once_it_has_results(
        qtbot, open_window, monkeypatch):
    window = open_window()
    window.show_panel("evaluate")
    page = window.panels["evaluate"]
    assert menus.page_export_button(window) is None  # nothing evaluated yet
    asked: list = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: asked.append(a[1]) or "")
    page.export_button.setEnabled(True)  # as once an evaluation is shown
    assert menus.page_export_button(window) is page.export_button
    action(window, "Edit › Export…").trigger()
    assert asked == ["Export the report to"]  # the report's own dialog


# -- Help --------------------------------------------------------------------------
def test_shortcuts_dialog_lists_the_actions_shortcuts(qtbot, open_window):
    window = open_window()
    rows = modal_text(qtbot, action(window, "Help › Keyboard shortcuts").trigger,
                      lambda d: d.rows())
    table = dict(rows)
    native = QKeySequence.SequenceFormat.NativeText
    assert table["Edit › Copy"] == QKeySequence("Ctrl+C").toString(native)
    assert QKeySequence("Ctrl++").toString(native) in table["View › Larger font"]
    assert table["View › Smaller font"] == QKeySequence("Ctrl+-").toString(native)
    assert table["View › Reset font size"] == QKeySequence("Ctrl+0").toString(native)
    first_page = QKeySequence("Ctrl+1").toString(native)
    assert table["View › Pages › Data & Model"] == first_page
    # built from the actions: a new one shows up without touching the dialog
    extra = window.addAction("Presenter mode")
    extra.setShortcut(QKeySequence("F11"))
    rows = modal_text(qtbot, action(window, "Help › Keyboard shortcuts").trigger,
                      lambda d: d.rows())
    assert ("Presenter mode", "F11") in rows


def test_about_box_names_version_libraries_licence_and_device(qtbot, open_window):
    window = open_window()
    text = modal_text(qtbot, action(window, "Help › About").trigger,
                      lambda d: d.text())
    assert f"Robustness Explorer {explorer.__version__}" in text
    assert torch.__version__ in text
    assert pg.__version__ in text
    assert "MIT License" in text
    from explorer.core import device as devices

    # the session's device as the status bar says it ("cpu (N threads)")
    assert devices.describe(window.ctx.session.device) in text
    assert "cpu (" in text
    assert "docs/architecture.md" in text


def test_copy_keeps_text_copy_in_a_line_edit(qtbot, open_window):
    """Ctrl+C in a text field copies its text, not a picture."""
    from PySide6.QtWidgets import QLineEdit

    window = open_window()
    activate(qtbot, window)
    edit = next(e for e in window.data_panel.findChildren(QLineEdit) if e.isVisible())
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=5000)  # an editable combo's line edit
    edit.setText("coat")
    edit.selectAll()
    QApplication.clipboard().clear()
    qtbot.keyClick(edit, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "coat"
