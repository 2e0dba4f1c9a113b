""""Copy image": a view's picture onto the clipboard, from its context menu.

``add_copy_action(widget)`` is the one line a widget adds: a "Copy image"
entry in its context menu (and in the context menu of every pyqtgraph plot
inside it, next to pyqtgraph's own "Export..."). Ctrl+C is the window's Edit
→ Copy (explorer.gui.menus), which copies the focused or hovered picture:
a second Ctrl+C here would make the key ambiguous, and Qt then fires neither.
The copied picture is the whole widget as shown.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QWidget

COPY_TEXT = "Copy image"


def copy_image(widget: QWidget) -> None:
    """Put what ``widget`` shows on the clipboard as an image."""
    pixmap = widget.grab()
    QGuiApplication.clipboard().setImage(pixmap.toImage())


def add_copy_action(widget: QWidget) -> QAction:
    """Give ``widget`` (a plot, an image view, or a composite of them) a
    "Copy image" context-menu entry; returns the action."""
    action = QAction(COPY_TEXT, widget)
    action.triggered.connect(lambda: copy_image(widget))
    widget.addAction(action)
    if (not isinstance(widget, pg.GraphicsView)
            and widget.contextMenuPolicy() == Qt.ContextMenuPolicy.DefaultContextMenu):
        widget.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    if widget.focusPolicy() == Qt.FocusPolicy.NoFocus:
        widget.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    # pyqtgraph views draw their own menus: every item's menu ends with the
    # scene's entries, so the action joins them.
    views = [widget] if isinstance(widget, pg.GraphicsView) else []
    views += widget.findChildren(pg.GraphicsView)
    for view in views:
        scene = view.scene()
        if action not in scene.contextMenu:
            scene.contextMenu.append(action)
    return action
