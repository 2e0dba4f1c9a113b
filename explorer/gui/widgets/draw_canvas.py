"""A small canvas to draw a grayscale digit or garment with the mouse."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from explorer.gui.widgets.image_grid import to_qimage


class DrawCanvas(QWidget):
    """Paint white strokes on black, like the 28×28 sets; ``image()`` is H×W in
    [0, 1]. The brush is soft at its edge so strokes look like the data."""

    changed = Signal()

    def __init__(
        self, height: int = 28, width: int = 28, zoom: int = 6, parent=None
    ) -> None:
        super().__init__(parent)
        self.zoom = zoom
        self.brush = 1.5  # radius in image pixels
        self._array = np.zeros((height, width), dtype=np.float32)
        self._last: QPointF | None = None
        self.setFixedSize(width * zoom, height * zoom)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw with the left mouse button")
        yy, xx = np.mgrid[0:height, 0:width]
        self._centres = (yy + 0.5, xx + 0.5)

    # -- public -------------------------------------------------------------
    def image(self) -> np.ndarray:
        return self._array.copy()

    def is_empty(self) -> bool:
        return not bool(self._array.any())

    def clear(self) -> None:
        self._array[:] = 0.0
        self.update()
        self.changed.emit()

    def set_brush(self, radius: float) -> None:
        self.brush = float(radius)

    def stroke(self, points: list[tuple[float, float]]) -> None:
        """Draw through (x, y) points in image pixels (what the mouse does)."""
        for (x0, y0), (x1, y1) in zip(points, points[1:] or points, strict=False):
            self._segment(x0, y0, x1, y1)
        self.update()
        self.changed.emit()

    # -- painting -------------------------------------------------------------
    def _segment(self, x0: float, y0: float, x1: float, y1: float) -> None:
        n = max(1, int(np.hypot(x1 - x0, y1 - y0) * 2))
        cy, cx = self._centres
        for t in np.linspace(0.0, 1.0, n + 1):
            x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            d = np.hypot(cx - x, cy - y)
            ink = np.clip(self.brush + 0.5 - d, 0.0, 1.0)
            np.maximum(self._array, ink, out=self._array)

    def _to_image(self, pos: QPointF) -> tuple[float, float]:
        return pos.x() / self.zoom, pos.y() / self.zoom

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._last = event.position()
            self.stroke([self._to_image(self._last)])

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._last is not None:
            pos = event.position()
            self.stroke([self._to_image(self._last), self._to_image(pos)])
            self._last = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._last = None

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.drawImage(self.rect(), to_qimage(self._array))
        painter.setPen(QPen(QColor("#888888"), 1))
        painter.drawRect(QRect(0, 0, self.width() - 1, self.height() - 1))
        painter.end()
