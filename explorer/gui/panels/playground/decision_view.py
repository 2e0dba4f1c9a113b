"""One model's decision regions on a 2-D toy set, redrawn live.

Every item is created once; a snapshot only calls ``setImage``/``setData``
on them (the playground redraws ten or more times a second). Coordinates
arrive in the playground's unit square and are drawn in the toy set's own
coordinates (the snapshot's ``extent``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.gui.widgets.plots import CLASS_COLORS

FLIPPED = "#d00000"  # an arrow whose adversarial point changes the prediction
KEPT = "#202020"
# Lightness by confidence: a point the model is unsure about is almost
# white, a confident region is a clear (still light) tint of its class.
_LIGHTEST, _DARKEST = 0.08, 0.6


def class_rgb(k: int) -> np.ndarray:
    """K×3 floats in [0, 1]: the class colours used by every toy view."""
    colors = [CLASS_COLORS[i % len(CLASS_COLORS)].lstrip("#") for i in range(k)]
    return np.array([[int(c[j:j + 2], 16) / 255 for j in (0, 2, 4)]
                     for c in colors])


def region_image(probs: np.ndarray) -> np.ndarray:
    """G×G×K probabilities -> G×G×3 uint8: predicted class, lightness by
    confidence (1/K = white, 1 = the class colour at its darkest tint)."""
    k = probs.shape[-1]
    pred, conf = probs.argmax(-1), probs.max(-1)
    t = np.clip((conf - 1 / k) / (1 - 1 / k), 0, 1)
    strength = (_LIGHTEST + (_DARKEST - _LIGHTEST) * t)[..., None]
    rgb = 1 - strength * (1 - class_rgb(k)[pred])
    return (rgb * 255).astype(np.uint8)


class DecisionView(QWidget):
    """Title, live numbers, the regions with points, eps-balls and arrows,
    and a legend of classes and marks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600; font-size: 11pt;")
        self.stats = QLabel("not trained yet")
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.canvas = pg.GraphicsLayoutWidget()
        self.plot = self.canvas.addPlot()
        self.plot.setAspectLocked(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.points = pg.ScatterPlotItem(size=5, pen=pg.mkPen("w", width=0.6))
        self.probes = pg.ScatterPlotItem(size=8, pen=pg.mkPen("k", width=1.5))
        self.balls = pg.PlotCurveItem(pen=pg.mkPen(KEPT, width=1.2),
                                      connect="finite", skipFiniteCheck=False)
        self.kept = pg.PlotCurveItem(pen=pg.mkPen(KEPT, width=1.6), connect="pairs")
        self.flipped = pg.PlotCurveItem(pen=pg.mkPen(FLIPPED, width=2),
                                        connect="pairs")
        # Fixed pens and brushes: pyqtgraph caches a rendered symbol per
        # pen/brush, so new ones each frame would re-render every marker.
        self.adv_kept = pg.ScatterPlotItem(size=7, symbol="x", pen=None,
                                           brush=pg.mkBrush(KEPT))
        self.adv_flipped = pg.ScatterPlotItem(size=8, symbol="x", pen=None,
                                              brush=pg.mkBrush(FLIPPED))
        self.palette = [pg.mkBrush(c) for c in CLASS_COLORS]
        for item in (self.image, self.points, self.balls, self.kept, self.flipped,
                     self.probes, self.adv_kept, self.adv_flipped):
            self.plot.addItem(item)
        self.heads: list[pg.ArrowItem] = []  # one per probe, kept between frames
        self.shape: tuple[int, ...] = ()  # of the last region image
        self._extent: tuple[float, ...] = ()
        self._points_key: tuple = ()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.stats)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.legend)

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    def set_axes(self, data_name: str, classes: Sequence[str]) -> None:
        """Axis names and the legend (once per data set, not per frame)."""
        self.plot.setLabel("bottom", f"x₁ ({data_name} coordinates)")
        self.plot.setLabel("left", f"x₂ ({data_name} coordinates)")
        swatches = "&nbsp;&nbsp;".join(
            f"<span style='color:{CLASS_COLORS[i % len(CLASS_COLORS)]}'>■</span> "
            f"{name}" for i, name in enumerate(classes))
        self.legend.setText(
            f"{swatches}&nbsp;&nbsp; □ ε-ball (ℓ∞) &nbsp;→ adversarial point "
            f"(<span style='color:{FLIPPED}'>red</span>: prediction changed); "
            "shade = confidence")

    def show_snapshot(self, arrays: dict, model: int, stats: str) -> None:
        """Draw model ``model`` of a playground snapshot."""
        x0, x1, y0, y1 = (float(v) for v in arrays["extent"])
        scale = x1 - x0
        rgb = region_image(arrays["probs"][model])
        self.image.setImage(rgb, autoLevels=False)
        self.shape = rgb.shape[:2]
        if self._extent != (x0, x1, y0, y1):
            self._extent = (x0, x1, y0, y1)
            self.image.setRect(QRectF(x0, y0, scale, y1 - y0))
            # One call: with the aspect locked, a second call would crop the first.
            self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        origin = np.array([x0, y0])
        points = arrays["points"] * scale + origin
        labels = arrays["labels"]
        key = (points.shape, float(points.sum()), int(labels.sum()))
        if key != self._points_key:  # the data changed: rebuild the brushes
            self._points_key = key
            self.points.setData(pos=points, brush=self._brushes(labels))
        index = arrays["probe_index"]
        start = points[index]
        end = arrays["probe_adv"][model] * scale + origin
        changed = arrays["probe_adv_pred"][model] != arrays["probe_pred"][model]
        self.probes.setData(pos=start, brush=self._brushes(labels[index]))
        self.adv_kept.setData(pos=end[~changed])
        self.adv_flipped.setData(pos=end[changed])
        self.balls.setData(*_squares(start, float(arrays["eps"]) * scale))
        self.kept.setData(*_segments(start[~changed], end[~changed]))
        self.flipped.setData(*_segments(start[changed], end[changed]))
        self._heads(start, end, changed)
        self.stats.setText(stats)

    def _brushes(self, labels: np.ndarray) -> list:
        return [self.palette[int(y) % len(self.palette)] for y in labels]

    def _heads(self, start: np.ndarray, end: np.ndarray, changed: np.ndarray) -> None:
        while len(self.heads) < len(start):  # only when the probe count grows
            head = pg.ArrowItem(headLen=9, tipAngle=35, tailLen=0, pen=None)
            self.plot.addItem(head)
            self.heads.append(head)
        moved = np.abs(end - start).max(1) > 1e-9 if len(start) else []
        for i, head in enumerate(self.heads):
            if i >= len(start) or not moved[i]:
                head.setVisible(False)
                continue
            dx, dy = end[i] - start[i]
            # ArrowItem's angle 0 points left and turns clockwise on screen;
            # the view's y axis points up.
            head.setStyle(angle=math.degrees(math.atan2(dy, -dx)),
                          brush=FLIPPED if changed[i] else KEPT)
            head.setPos(float(end[i][0]), float(end[i][1]))
            head.setVisible(True)


def _squares(centres: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    """Outlines of l-inf balls, NaN-separated for one curve item."""
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1],
                        [np.nan, np.nan]]) * half
    path = (centres[:, None, :] + corners[None]).reshape(-1, 2)
    return path[:, 0], path[:, 1]


def _segments(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.stack([start, end], 1).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]

