"""Which model and data the page works on: a one-line strip at the top of
every page that uses the session's model or data, and in the status bar.

"Model: fmnist-cnn-standard (SmallCNN) · clean 91.3 % [⚠ softmax]
Data: Fashion-MNIST mini (built-in), test split, 1,000 images [Change…]"

It only listens to the session (``data_changed``, ``model_changed``,
``model_info_changed``); "Change…" emits :attr:`CurrentModelStrip.change_requested`,
which the main window connects to its Data & Model page (pages never call
each other).
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.session import ModelInfo, Session
from explorer.gui.widgets.aspect_image import ElidedLabel

# The guardrail badge's look (as on the Data & Model page's model box).
BADGE_STYLE = ("background: #fff3cd; color: #664d03; border: 1px solid #ffda6a; "
               "border-radius: 3px; padding: 0px 4px;")
NO_MODEL = "No model loaded"
CHANGE_TIP = "Choose another model or data set on the Data & Model page"
# a workspace run's folder: 20261203-221424-train-bc9e (store.workspace)
RUN_FOLDER = re.compile(r"\d{8}-\d{6}-[\w-]+-[0-9a-f]{4}")


def shown_name(source: str) -> str:
    """The session model's name as the strip shows it: a file of a
    workspace run as "run ID: FILE", another file by its name, a built-in
    name as it is (the tooltip keeps the whole path)."""
    if "/" not in source and "\\" not in source:
        return source
    path = PurePath(source)
    if RUN_FOLDER.fullmatch(path.parent.name):
        return f"run {path.parent.name}: {path.name}"
    return path.name


def model_text(info: ModelInfo, has_model: bool) -> str:
    """"Model: NAME (ARCH) · clean 91.3 %"; a clean accuracy only when one
    was measured on the session's data."""
    if not has_model:
        return NO_MODEL
    arch = f" ({info.arch})" if info.arch else ""
    if info.clean_acc is not None:
        acc = f"clean {100 * info.clean_acc:.1f} %"
    elif info.measuring:
        acc = "clean acc. measuring…"
    else:
        acc = "clean acc. not measured"
    return f"Model: {shown_name(info.name) or 'unnamed'}{arch} · {acc}"


def data_text(session: Session, compact: bool = False) -> str:
    """"Data: Fashion-MNIST mini (built-in), test split, 1,000 images";
    ``compact``: "Data: Fashion-MNIST mini (built-in), test"."""
    ds = session.dataset
    if ds is None:
        return "Data: none loaded"
    info = session.data_info
    title = getattr(info, "title", "") or session.data_name or "unnamed"
    if compact:
        return f"Data: {title}, {session.split}" if session.split else f"Data: {title}"
    split = f", {session.split} split" if session.split else ""
    try:
        n = len(ds)
    except TypeError:
        return f"Data: {title}{split}"
    shape = tuple(getattr(info, "shape", ()) or ())
    noun = "points" if len(shape) == 1 else "images"
    return f"Data: {title}{split}, {n:,} {noun}"


class CurrentModelStrip(QFrame):
    """The session's model and data on one line, with the guardrail badge and
    a "Change…" button. ``compact``: the status bar's version (no frame)."""

    change_requested = Signal()

    def __init__(self, session: Session, compact: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.compact = session, compact
        self.setObjectName("currentModel")
        self.model_label = _line(Qt.TextElideMode.ElideMiddle)
        self.data_label = _line(Qt.TextElideMode.ElideRight)
        self.badge = QLabel()
        self.badge.setStyleSheet(BADGE_STYLE)
        self.badge.setVisible(False)
        self.change_button = QToolButton()
        self.change_button.setText("Change…")
        self.change_button.setToolTip(CHANGE_TIP)
        self.change_button.setAutoRaise(True)
        self.change_button.setStyleSheet("color: palette(link);")  # reads as a link
        self.change_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.change_button.clicked.connect(self.change_requested)
        row = QHBoxLayout(self)
        if compact:
            row.setContentsMargins(0, 0, 0, 0)
        else:
            row.setContentsMargins(8, 2, 8, 2)
            self.setFrameShape(QFrame.Shape.StyledPanel)  # draws the rule below
            self.setStyleSheet("#currentModel { border: none; "
                               "border-bottom: 1px solid palette(mid); }")
        row.setSpacing(8)
        row.addWidget(self.model_label)
        row.addWidget(self.badge)
        row.addWidget(self.data_label)
        row.addWidget(self.change_button)
        row.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        session.data_changed.connect(self.refresh)
        session.model_changed.connect(self.refresh)
        session.model_info_changed.connect(self.refresh)
        self.refresh()

    def text(self) -> str:
        """The whole line as it reads, before any shortening."""
        parts = [self.model_label.full_text()]
        if not self.badge.isHidden():
            parts.append(self.badge.text())
        parts.append(self.data_label.full_text())
        return " · ".join(parts)

    @Slot()
    def refresh(self) -> None:
        s = self.session
        info = s.model_info
        line = model_text(info, s.model is not None)
        self.model_label.setText(line)
        whole = s.model is not None and shown_name(info.name) != info.name
        self.model_label.setToolTip(f"{line}\n{info.name}" if whole else line)
        self.data_label.setText(data_text(s, self.compact))
        found = info.warnings if s.model is not None else ()
        self.badge.setText("⚠ " + ", ".join(found) if found else "")
        self.badge.setToolTip(info.warnings_tip)
        self.badge.setVisible(bool(found))


def _line(mode: Qt.TextElideMode) -> ElidedLabel:
    """One line of the strip: plain text, shortened with "…" at ``mode``."""
    label = ElidedLabel(mode=mode)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
    return label


def above(page: QWidget, ctx: Any, body: QLayout) -> CurrentModelStrip:
    """Make ``page``'s layout the strip over ``body`` (the page's own layout,
    margins and all); returns the strip."""
    strip = CurrentModelStrip(ctx.session)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.setSpacing(0)
    outer.addWidget(strip)
    outer.addLayout(body, 1)
    return strip
