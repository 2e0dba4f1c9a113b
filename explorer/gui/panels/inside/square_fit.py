"""Maps whose two axes share one unit: an honest (locked) aspect ratio and a
view that shows exactly the computed region.

A pyqtgraph view box with a locked aspect fits the range set on it by widening
one axis until the range has the box's own shape, so a square grid in a tall
box gets blank bands above and below it. :class:`SquareMapsWidget` instead
pads each such plot so that its view box is square: then the range set on it
(:func:`map_bounds`) is exactly what is shown, at equal scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer, Slot
from PySide6.QtWidgets import QGraphicsLayout, QGraphicsWidget, QWidget

SQUARE_SLACK = 0.5  # px: a box this close to square is square
MARGIN = 0.05  # of the region's size, around marks that fall outside the grid


def map_bounds(rect: QRectF, points: np.ndarray | Sequence[Sequence[float]],
               margin: float = MARGIN) -> QRectF:
    """The computed region ``rect``; where some of ``points`` ((n, 2) plane
    coordinates of the marks drawn on it: eps ball, image, adversarial points)
    fall outside it, the smallest rectangle holding both, grown by ``margin``
    of its size on every side so the marks are not cut at the edge."""
    pts = np.asarray(points, float).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if not len(pts):
        return QRectF(rect)
    x0, x1 = min(rect.left(), pts[:, 0].min()), max(rect.right(), pts[:, 0].max())
    y0, y1 = min(rect.top(), pts[:, 1].min()), max(rect.bottom(), pts[:, 1].max())
    if (x0, x1, y0, y1) == (rect.left(), rect.right(), rect.top(), rect.bottom()):
        return QRectF(rect)
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    return QRectF(x0 - dx, y0 - dy, x1 - x0 + 2 * dx, y1 - y0 + 2 * dy)


def _settle(widget: QGraphicsWidget) -> None:
    """Lay out ``widget`` and every widget nested in it now, not at the next
    turn of the event loop (pyqtgraph's classes hide ``layout()`` behind an
    attribute of the same name, so the Qt method is called unbound)."""
    layout: QGraphicsLayout | None = QGraphicsWidget.layout(widget)
    if layout is None:
        return
    layout.activate()
    for i in range(layout.count()):
        child = layout.itemAt(i).graphicsItem()
        if isinstance(child, QGraphicsWidget):
            _settle(child)


class SquareMapsWidget(pg.GraphicsLayoutWidget):
    """A layout widget whose ``square_plots`` keep square view boxes through
    every resize: the largest square the plot's cell allows, centred across
    it, with what is left over below it.

    The plot still fills its cell; empty contents margins take the room the
    square does not need (maximum sizes would shrink the cell instead, and a
    lone plot would then sit in a corner). A plot's axes settle their widths
    only once their tick labels are drawn, which resizes the view box
    afterwards; a box that is then no longer square is fitted again at the
    next turn of the event loop."""

    square_plots: Sequence[pg.PlotItem] = ()  # the base's __init__ resizes
    _fitting = False

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.square_plots = []
        self._pad: dict[int, tuple[float, float]] = {}  # per plot: added w, h
        self._watched: set[int] = set()
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(0)
        self._refit.timeout.connect(self.fit_squares)

    def set_square(self, plots: Sequence[pg.PlotItem]) -> None:
        """Keep these plots' view boxes square; others fill their cells again."""
        for plot in self.square_plots:
            if plot not in plots:
                self._pad.pop(id(plot), None)
                plot.setContentsMargins(0, 0, 0, 0)
        self.square_plots = list(plots)
        for plot in self.square_plots:
            if id(plot) not in self._watched:
                self._watched.add(id(plot))
                plot.getViewBox().sigResized.connect(self._box_resized)
        self.fit_squares()

    @Slot(object)
    def _box_resized(self, box: pg.ViewBox) -> None:
        if self._fitting or not any(p.getViewBox() is box for p in self.square_plots):
            return
        size = box.size()
        if abs(size.width() - size.height()) > SQUARE_SLACK:
            self._refit.start()

    def fit_squares(self) -> None:
        if not self.square_plots or self._fitting:
            return
        self._fitting = True
        try:
            self._fit()
        finally:
            self._fitting = False

    def _fit(self) -> None:
        _settle(self.ci)
        for plot in self.square_plots:
            pad_w, pad_h = self._pad.get(id(plot), (0.0, 0.0))
            box = plot.getViewBox().size()
            w, h = box.width() + pad_w, box.height() + pad_h  # the box unpadded
            if w <= 0 or h <= 0:
                continue
            side = min(w, h)
            # The title keeps its width: a plot too narrow for its title
            # stays wider than square (the locked aspect then pads its range).
            room = plot.size().width() - plot.titleLabel.minimumWidth()
            pad_w, pad_h = min(w - side, max(0.0, room)), h - side
            self._pad[id(plot)] = (pad_w, pad_h)
            plot.setContentsMargins(pad_w / 2, 0, pad_w / 2, pad_h)
        _settle(self.ci)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self.fit_squares()
