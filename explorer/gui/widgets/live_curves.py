"""Loss and confidence per attack step, one thin curve per image, mean bold."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from explorer.gui.widgets.plots import CLASS_COLORS

MAX_CURVES = 48
_THIN = (120, 120, 120, 90)


def _plot(layout: pg.GraphicsLayoutWidget, title: str, y_label: str) -> pg.PlotItem:
    plot = layout.addPlot(title=title)
    plot.setLabel("bottom", "step")
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setDownsampling(mode="peak")
    plot.setClipToView(True)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    return plot


class LiveCurves(pg.GraphicsLayoutWidget):
    """Two plots built once: the attack loss, and the confidence in the true
    class (plus the target class when the attack is targeted)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _plot(self, "Attack loss", "loss")
        self.conf_plot = _plot(self, "Confidence", "probability (%)")
        self.conf_plot.setYRange(0, 100, padding=0.02)
        self.legend = self.conf_plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.loss_curves = [self.loss_plot.plot(pen=pg.mkPen(_THIN, width=1))
                            for _ in range(MAX_CURVES)]
        self.conf_curves = [self.conf_plot.plot(pen=pg.mkPen(_THIN, width=1))
                            for _ in range(MAX_CURVES)]
        self.loss_mean = self.loss_plot.plot(pen=pg.mkPen(CLASS_COLORS[0], width=3))
        self.conf_mean = self.conf_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[0], width=3), name="true class (mean)")
        self.target_mean = self.conf_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[3], width=3, style=Qt.PenStyle.DashLine))
        self.focus_loss = self.loss_plot.plot(pen=pg.mkPen(CLASS_COLORS[1], width=2))
        self.focus_conf = self.conf_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[1], width=2), name="focused image")
        self.cursors = []
        for plot in (self.loss_plot, self.conf_plot):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen(CLASS_COLORS[2], width=1.5))
            plot.addItem(line)
            self.cursors.append(line)
        self.n_curves = 0

    def reset(self) -> None:
        """Empty every curve (not `clear`: GraphicsLayoutWidget binds its
        layout's clear, which would remove the plots, onto the instance)."""
        for curve in (*self.loss_curves, *self.conf_curves, self.loss_mean,
                      self.conf_mean, self.target_mean, self.focus_loss,
                      self.focus_conf):
            curve.setData([], [])
        self.n_curves = 0

    def set_series(
        self,
        steps: np.ndarray,
        loss: np.ndarray,
        true_conf: np.ndarray,
        target_conf: np.ndarray | None,
        focus: int,
    ) -> None:
        """``steps`` (S,); ``loss``, ``true_conf``, ``target_conf`` (S, B),
        confidences as probabilities; ``focus`` is drawn in orange."""
        n = min(loss.shape[1], MAX_CURVES) if loss.ndim == 2 else 0
        for i, (lc, cc) in enumerate(zip(self.loss_curves, self.conf_curves,
                                         strict=True)):
            if i < n:
                lc.setData(steps, loss[:, i])
                cc.setData(steps, 100 * true_conf[:, i])
            elif i < self.n_curves:
                lc.setData([], [])
                cc.setData([], [])
        self.n_curves = n
        if not n:
            return
        self.loss_mean.setData(steps, loss.mean(1))
        self.conf_mean.setData(steps, 100 * true_conf.mean(1))
        self.legend.removeItem(self.target_mean)
        if target_conf is None:
            self.target_mean.setData([], [])
        else:
            self.target_mean.setData(steps, 100 * target_conf.mean(1))
            self.legend.addItem(self.target_mean, "target class (mean)")
        if 0 <= focus < n:
            self.focus_loss.setData(steps, loss[:, focus])
            self.focus_conf.setData(steps, 100 * true_conf[:, focus])

    def set_cursor(self, step: float) -> None:
        for line in self.cursors:
            line.setValue(step)
