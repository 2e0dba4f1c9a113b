"""The smoothing tab's views: the accuracy-vs-radius plot and one image's
class counts. Built once, updated with ``setData``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.core.certify.smoothing import certified_accuracy
from explorer.gui.widgets.plots import BarChart, OutsideLegend

GRID_POINTS = 201  # radii where the certified curve is drawn
CERTIFIED_PEN = pg.mkPen("#2ca02c", width=2)
BASE_PEN = pg.mkPen("#d62728", width=2, style=pg.QtCore.Qt.PenStyle.DashLine)
SMOOTHED_PEN = pg.mkPen("#1f77b4", width=2, style=pg.QtCore.Qt.PenStyle.DashLine)


class RadiusPlot(pg.PlotWidget):
    """Certified accuracy (a step curve that grows as images are certified)
    and the empirical robust accuracy of the base and the smoothed model
    under PGD-l2, against the l2 radius."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        plot = self.getPlotItem()
        plot.setTitle("Accuracy against the l2 radius")
        plot.setLabel("bottom", "l2 radius (pixels in [0,1])")
        plot.setLabel("left", "accuracy (%)")
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setYRange(0, 100, padding=0.05)
        plot.getAxis("bottom").setSIPrefixEnableRanges(((math.inf, math.inf),))
        self.setMouseEnabled(x=False, y=False)
        self.legend = OutsideLegend(plot)
        self.certified = plot.plot(pen=CERTIFIED_PEN, name="certified (smoothed)")
        self.marks = plot.plot(pen=None, symbol="o", symbolSize=7,
                               symbolBrush="#2ca02c")
        self.base = plot.plot(pen=BASE_PEN, symbol="s", symbolSize=6,
                              symbolBrush="#d62728", name="base model, PGD-l2")
        self.smoothed = plot.plot(pen=SMOOTHED_PEN, symbol="t", symbolSize=7,
                                  symbolBrush="#1f77b4",
                                  name="smoothed model, PGD-l2 + EOT")
        self.limit = pg.InfiniteLine(angle=90, pen=pg.mkPen("#999", width=1,
                                                           style=pg.QtCore.Qt.PenStyle.DotLine))
        self.limit.setVisible(False)
        plot.addItem(self.limit)
        self.x_max = 1.0

    def reset(self, levels: Sequence[float], limit: float) -> None:
        """Empty curves for a run at ``levels``; ``limit`` is the largest
        radius the run's sample count can certify."""
        for curve in (self.certified, self.marks):
            curve.setData([], [])
        self.x_max = max(max(levels, default=1.0), limit, 1e-3) * 1.05
        self.limit.setPos(limit)
        self.limit.setVisible(limit > 0)
        self.limit.setToolTip(f"no radius above {limit:.3g} can be certified "
                              "with this many samples")
        self.setXRange(0, self.x_max, padding=0.02)

    def widen(self, levels: Sequence[float]) -> None:
        """Make room for ``levels`` (an attack at larger radii than the
        certificate's); the certified curve keeps its grid until the next run."""
        top = max(levels, default=0.0) * 1.05
        if top > self.x_max:
            self.x_max = top
            self.setXRange(0, top, padding=0.02)

    def clear_empirical(self) -> None:
        self.base.setData([], [])
        self.smoothed.setData([], [])

    def set_certified(self, radii: Sequence[float | None],
                      levels: Sequence[float]) -> None:
        """The curve from the per-image radii so far (None: wrong or
        abstained) and dots at ``levels``."""
        grid = np.linspace(0.0, self.x_max, GRID_POINTS)
        curve = certified_accuracy(radii, grid)
        self.certified.setData(grid, 100 * np.array(list(curve.values())))
        dots = certified_accuracy(radii, levels)
        self.marks.setData(list(dots), [100 * v for v in dots.values()])

    def set_empirical(self, radii: Sequence[float], base: Sequence[float],
                      smoothed: Sequence[float]) -> None:
        self.base.setData(list(radii), [100 * v for v in base])
        self.smoothed.setData(list(radii), [100 * v for v in smoothed])

    def points(self, curve: str) -> int:
        x = getattr(self, curve).xData
        return 0 if x is None else len(x)


class CountsView(QWidget):
    """One image's noisy-sample counts per class and what they certify."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bars = BarChart("Class counts under noise", "noisy samples")
        self.text = QLabel("Click an image to see its class counts and radius.")
        self.text.setWordWrap(True)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.text)
        box.addWidget(self.bars, 1)

    def show_image(self, index: int, arrays: dict[str, np.ndarray],
                   classes: Sequence[str], sigma: float) -> None:
        counts = np.asarray(arrays["counts"], dtype=float)
        names = [classes[i] if i < len(classes) else str(i)
                 for i in range(len(counts))]
        self.bars.set_values(counts, names, x_max=max(float(counts.sum()), 1.0))
        label, pred = int(arrays["label"]), int(arrays["prediction"])
        p_lower, radius = float(arrays["p_lower"]), float(arrays["radius"])
        head = f"Image #{index} ({names[label] if label < len(names) else label}): "
        if pred < 0:
            body = (f"abstained — p_lower {p_lower:.4f} ≤ 1/2, so no class is "
                    f"certified.")
        elif pred == label:
            body = (f"certified {names[pred]} within l2 radius {radius:.3f} "
                    f"(σ·Φ⁻¹(p_lower), p_lower {p_lower:.4f}, σ {sigma:g}).")
        else:
            body = (f"certified {names[pred]}, which is wrong (radius "
                    f"{radius:.3f} around a wrong answer counts as 0).")
        self.text.setText(head + body + f" Counts of {int(counts.sum())} noisy "
                                        f"samples.")
