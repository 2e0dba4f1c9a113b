"""The Edit, View and Help menus of the main window.

Edit copies the plot or image under the mouse (or with the focus) to the
clipboard and exports the current page; View switches to full screen, scales
the font, turns the dark theme on and goes to the pages (Ctrl+1..8); Help
lists every shortcut (read from the window's actions, so it never goes
stale), shows the first-run tour again and opens the About box.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QCursor, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import theme
from explorer.gui.panels import PANELS

FULL_SCREEN_KEY = QKeySequence("Ctrl+Shift+F")  # F11 is presenter mode
# Pages whose export_button is not a result export (Data & Model's exports the
# model as .pt2): Export… saves a PNG of them instead.
NOT_RESULT_EXPORTS = {"data"}
STATUS_MS = 4000


def _action(window: QMainWindow, menu: QMenu, text: str, slot,
            keys: list[QKeySequence] | None = None, checkable: bool = False) -> QAction:
    action = QAction(text, window)
    if keys:
        action.setShortcuts(keys)
    action.setCheckable(checkable)
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def install(window) -> None:
    """Add Edit, View and Help to ``window``'s menu bar (after File)."""
    bar = window.menuBar()
    edit = bar.addMenu("&Edit")
    window.copy_action = _action(window, edit, "Copy", lambda: copy_current(window),
                                 [QKeySequence(QKeySequence.StandardKey.Copy)])
    window.export_action = _action(window, edit, "Export…",
                                   lambda: export_current(window))

    view = window.view_menu = bar.addMenu("&View")
    window.full_screen_action = _action(
        window, view, "Full screen", lambda on: set_full_screen(window, on),
        [FULL_SCREEN_KEY], checkable=True)
    window.installEventFilter(_FullScreenCheck(window))
    view.addSeparator()
    settings = window.settings
    larger = [QKeySequence(QKeySequence.StandardKey.ZoomIn), QKeySequence("Ctrl+=")]
    window.font_actions = [
        _action(window, view, "Larger font", lambda: theme.change_font(settings, 1),
                larger),
        _action(window, view, "Smaller font", lambda: theme.change_font(settings, -1),
                [QKeySequence(QKeySequence.StandardKey.ZoomOut)]),
        _action(window, view, "Reset font size",
                lambda: theme.change_font(settings, None), [QKeySequence("Ctrl+0")]),
    ]
    window.dark_action = _action(window, view, "Dark theme",
                                 lambda on: theme.set_dark(window.settings, on),
                                 checkable=True)
    window.dark_action.setChecked(theme.is_dark(window.settings))
    view.addSeparator()
    pages = view.addMenu("Pages")
    for number, spec in enumerate(PANELS, start=1):
        _action(window, pages, spec.title.replace("&", "&&"),
                lambda _=False, key=spec.key: _go_to(window, key),
                [QKeySequence(f"Ctrl+{number}")] if number <= 9 else None)

    help_menu = window.help_menu = bar.addMenu("&Help")
    _action(window, help_menu, "Keyboard shortcuts",
            lambda: ShortcutsDialog(window).exec(),
            [QKeySequence(QKeySequence.StandardKey.HelpContents)])
    _action(window, help_menu, "Show the tour again", lambda: show_tour(window))
    help_menu.addSeparator()
    _action(window, help_menu, "About", window.about)


def _go_to(window, key: str) -> None:
    if key in window.panels:
        window.show_panel(key)


def show_tour(window) -> None:
    from explorer.gui import tour

    if window.panels:
        window.tour = tour.start(window)


# -- Edit -----------------------------------------------------------------------------
def _is_picture(widget: QWidget) -> bool:
    """A plot, an image grid or a label showing a picture."""
    from explorer.gui.widgets.image_grid import ImageGrid

    if hasattr(widget, "copy_to_clipboard") or isinstance(widget, ImageGrid):
        return True
    if isinstance(widget, QLabel):
        pixmap = widget.pixmap()
        return pixmap is not None and not pixmap.isNull()
    pg = sys.modules.get("pyqtgraph")
    return pg is not None and isinstance(widget, pg.GraphicsView)


def copy_target(window) -> QWidget | None:
    """The picture under the mouse, else the one with the focus, else the page."""
    page = window.stack.currentWidget()
    if page is None:
        return None
    for start in (QApplication.widgetAt(QCursor.pos()), QApplication.focusWidget()):
        if start is None or not (start is page or page.isAncestorOf(start)):
            continue
        widget = start
        while widget is not None and widget is not page:
            if _is_picture(widget):
                return widget
            widget = widget.parentWidget()
    return page


def copy_current(window) -> QWidget | None:
    """Copy the target (see :func:`copy_target`) to the clipboard as an image."""
    target = copy_target(window)
    if target is None:
        return None
    if hasattr(target, "copy_to_clipboard"):  # the widget's own copy
        target.copy_to_clipboard()
    else:
        QApplication.clipboard().setImage(target.grab().toImage())
    what = "the page" if target is window.stack.currentWidget() else "the picture"
    window.statusBar().showMessage(f"Copied {what} to the clipboard", STATUS_MS)
    return target


def _current_key(window) -> str | None:
    page = window.stack.currentWidget()
    return next((k for k, p in window.panels.items() if p is page), None)


def page_export_button(window):
    """The current page's own export button, when it has one that can export."""
    page = window.stack.currentWidget()
    if page is None or _current_key(window) in NOT_RESULT_EXPORTS:
        return None
    for widget in [page, *page.findChildren(QWidget)]:
        button = getattr(widget, "export_button", None)
        if button is not None and button.isVisible() and button.isEnabled():
            return button
    return None


def export_current(window) -> Path | None:
    """The page's own export (Evaluate's report, Look Inside's plot), else a PNG."""
    button = page_export_button(window)
    if button is not None:
        button.click()
        return None
    path, _ = QFileDialog.getSaveFileName(window, "Save the page as an image", "",
                                          "PNG image (*.png)")
    if not path:
        return None
    return save_page_png(window, path)


def save_page_png(window, path: str | Path) -> Path | None:
    """The current page as a PNG; says in the status bar what happened."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    if not window.stack.currentWidget().grab().save(str(path), "PNG"):
        window.statusBar().showMessage(f"Could not write {path}", STATUS_MS * 2)
        return None
    window.statusBar().showMessage(f"Saved the page to {path}", STATUS_MS)
    return path


# -- View -----------------------------------------------------------------------------
def set_full_screen(window, on: bool) -> None:
    if on:
        window.showFullScreen()
    else:
        window.showNormal()


class _FullScreenCheck(QObject):
    """Keeps View > Full screen ticked as the window is (F11, the window manager)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.WindowStateChange:
            self.window.full_screen_action.setChecked(self.window.isFullScreen())
        return False


# -- Help -----------------------------------------------------------------------------
def shortcuts(window) -> list[tuple[str, str]]:
    """(where › action, its shortcuts) of every action with a shortcut."""
    rows: list[tuple[str, str]] = []
    seen: set[int] = set()

    def walk(menu: QMenu, where: str) -> None:
        for action in menu.actions():
            name = _plain(action.text())
            if action.menu() is not None:
                walk(action.menu(), f"{where} › {name}")
                continue
            seen.add(id(action))
            if action.shortcuts():
                rows.append((f"{where} › {name}", _keys(action)))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.text()))
    for action in window.findChildren(QAction):  # shortcuts outside the menus
        if id(action) not in seen and action.shortcuts() and action.text():
            rows.append((_plain(action.text()), _keys(action)))
    return rows


def _plain(text: str) -> str:
    """A menu text without its mnemonic marks ("&&" is a literal "&")."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _keys(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText)
                     for k in action.shortcuts())


class ShortcutsDialog(QDialog):
    """Help > Keyboard shortcuts: a table built from the window's actions."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcuts(window)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (name, keys) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnToContents(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(self.table)
        box.addWidget(buttons)
        self.resize(460, 480)

    def rows(self) -> list[tuple[str, str]]:
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text())
                for r in range(self.table.rowCount())]

