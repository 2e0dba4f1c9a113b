"""The first-run tour: three callouts pointing at the page list.

Shown once, on the first interactive launch (``explorer gui`` without
``--screenshot``; the window gets ``tour=True`` only from there, so tests and
unattended runs never see it unless they ask). Closing a callout (×) or
"Got it" on the last one sets ``tour/done`` in the settings; Help > Show the
tour again starts it regardless.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import settings as settings_mod

DONE_KEY = "tour/done"
TAIL = 10  # px: the bubble's pointer, on its left edge
POINTER_Y = 22  # px below the bubble's top, unless the menu bar is in the way
MIN_POINTER_Y = 8
FILL, BORDER, INK = QColor("#fff6c8"), QColor("#b89b2a"), QColor("#222222")


@dataclass(frozen=True)
class TourStep:
    page: str  # the page (PanelSpec.key) whose entry in the list it points at
    title: str
    text: str


STEPS: tuple[TourStep, ...] = (
    TourStep("data", "Start here",
             "Load a data set and a model on Data & Model: every page works "
             "on the ones chosen here."),
    TourStep("attack", "Attack Lab",
             "Craft an adversarial example: pick an image and an attack, and "
             "watch the prediction flip."),
    TourStep("training", "Training",
             "Train a defense and watch its curves grow, then compare it on "
             "Evaluate & Compare."),
)


class Bubble(QWidget):
    """A small frameless callout inside the window, its pointer on the left."""

    next_clicked = Signal()
    closed = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.pointer_y = POINTER_Y
        self.title = QLabel()
        self.title.setStyleSheet(f"font-weight: 600; color: {INK.name()};")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setStyleSheet(f"color: {INK.name()};")
        self.counter = QLabel()
        self.counter.setStyleSheet("color: #6b5a12;")
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setToolTip("Close the tour")
        self.close_button.setAutoRaise(True)
        self.close_button.setStyleSheet(f"color: {INK.name()}; border: none;")
        self.close_button.clicked.connect(self.closed)
        self.next_button = QPushButton("Next")
        self.next_button.clicked.connect(self.next_clicked)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.close_button)
        foot = QHBoxLayout()
        foot.addWidget(self.counter, 1)
        foot.addWidget(self.next_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(TAIL + 10, 8, 10, 8)
        box.addLayout(head)
        box.addWidget(self.text)
        box.addLayout(foot)
        self.setFixedWidth(300)

    def set_step(self, step: TourStep, index: int, count: int) -> None:
        self.title.setText(step.title)
        self.text.setText(step.text)
        self.counter.setText(f"{index + 1} of {count}")
        self.next_button.setText("Got it" if index == count - 1 else "Next")
        self.adjustSize()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.rect().adjusted(TAIL, 1, -1, -1)
        path = QPainterPath()
        path.addRoundedRect(r, 6, 6)
        tail = QPainterPath()
        y = self.pointer_y
        tail.moveTo(QPointF(r.left() + 1, y - TAIL / 2))
        tail.lineTo(QPointF(1, y))
        tail.lineTo(QPointF(r.left() + 1, y + TAIL / 2))
        tail.closeSubpath()
        p.setPen(QPen(BORDER, 1.2))
        p.setBrush(FILL)
        p.drawPath(path.united(tail))


class Tour(QObject):
    """Walks the bubble through :data:`STEPS`; ``finished`` when dismissed."""

    finished = Signal()

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.index = 0
        self.active = False
        self.bubble = Bubble(window)
        self.bubble.next_clicked.connect(self.next)
        self.bubble.closed.connect(self.dismiss)
        window.installEventFilter(self)

    @property
    def step(self) -> TourStep:
        return STEPS[self.index]

    def start(self) -> None:
        self.index = 0
        self.active = True
        self._show()

    @Slot()
    def next(self) -> None:
        if self.index == len(STEPS) - 1:
            self.dismiss()
            return
        self.index += 1
        self._show()

    @Slot()
    def dismiss(self) -> None:
        """Closed or finished: never shown again on launch."""
        self.window.settings.setValue(DONE_KEY, True)
        self.window.settings.sync()
        self.active = False
        self.window.removeEventFilter(self)
        self.bubble.hide()
        self.bubble.deleteLater()
        self.finished.emit()

    def _show(self) -> None:
        self.bubble.set_step(self.step, self.index, len(STEPS))
        self._place()
        self.bubble.show()
        self.bubble.raise_()

    def _place(self) -> None:
        """Beside the step's page in the list, its pointer on the entry."""
        nav = self.window.nav
        keys = list(self.window.panels)
        row = keys.index(self.step.page) if self.step.page in keys else 0
        rect = nav.visualItemRect(nav.item(row))
        centre = QPoint(rect.right(), rect.center().y())
        anchor = nav.viewport().mapTo(self.window, centre)
        x = nav.mapTo(self.window, QPoint(nav.width(), 0)).x() - 4
        below_menus = self.window.centralWidget().y()
        top = max(below_menus, anchor.y() - POINTER_Y)
        self.bubble.pointer_y = max(MIN_POINTER_Y, anchor.y() - top)
        self.bubble.move(max(0, x), top)
        self.bubble.update()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Resize:
            self._place()
        return False


def should_show(settings) -> bool:
    return not settings_mod.read(settings, DONE_KEY, False, bool)


def start(window) -> Tour:
    """Start the tour now (Help > Show the tour again)."""
    previous = getattr(window, "tour", None)
    if isinstance(previous, Tour) and previous.active:
        previous.start()
        return previous
    tour = Tour(window)
    tour.start()
    return tour


def maybe_start(window) -> Tour | None:
    """The tour on a first launch; None once it was dismissed."""
    return start(window) if should_show(window.settings) else None
