"""Live curves of a denoiser training run: loss, and test PSNR clean and
under ObsAtk beside the noisy input's (dashed: the bar a denoiser must
clear). Items are made once and updated with ``setData``."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend
from explorer.gui.widgets.training_curves import make_plot

PSNR_KEYS = {"test_psnr_clean": "denoised f(v)",
             "test_psnr_attacked": "denoised under ObsAtk",
             "test_psnr_noisy": "noisy input v (no denoiser)"}


class DenoiseCurves(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        QVBoxLayout(self).addWidget(self.view)
        self.layout().setContentsMargins(0, 0, 0, 0)
        self.loss_plot = make_plot(self.view, "Training loss", "MSE")
        self.psnr_plot = make_plot(self.view, "Test PSNR", "PSNR (dB)")
        for plot in (self.loss_plot, self.psnr_plot):
            OutsideLegend(plot)
        self.batch_curve = self.loss_plot.plot(pen=pg.mkPen((150, 150, 150), width=1),
                                               name="batch")
        self.batch_curve.setDownsampling(auto=True, method="peak")
        self.batch_curve.setClipToView(True)
        self.train_loss = self.loss_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[0], width=2), symbol="o", symbolSize=5,
            symbolBrush=CLASS_COLORS[0], name="train (epoch)")
        self.psnr_curves = {}
        for i, (key, label) in enumerate(PSNR_KEYS.items()):
            color = CLASS_COLORS[i + 2] if key != "test_psnr_noisy" else (120, 120, 120)
            style = (Qt.PenStyle.DashLine if key == "test_psnr_noisy"
                     else Qt.PenStyle.SolidLine)
            self.psnr_curves[key] = self.psnr_plot.plot(
                pen=pg.mkPen(color, width=2, style=style), symbol="o",
                symbolSize=5, symbolBrush=color, name=label)
        self.reset(1)

    def reset(self, epochs: int) -> None:
        self.epochs = max(1, epochs)
        self.steps_per_epoch = 0
        # step -> value: a resumed run re-reports its unfinished epoch, and
        # the history read at resume may already hold the newest points
        self.series: dict[str, dict[float, float]] = {
            k: {} for k in ("batch_loss", "train_loss", *PSNR_KEYS)}
        for curve in (self.batch_curve, self.train_loss, *self.psnr_curves.values()):
            curve.setData([], [])
        for plot in (self.loss_plot, self.psnr_plot):
            plot.setXRange(0, self.epochs, padding=0.02)
        self.loss_plot.setYRange(0, 0.01, padding=0.02)
        self.psnr_plot.setYRange(15, 30, padding=0.02)

    def set_steps_per_epoch(self, n: int) -> None:
        self.steps_per_epoch = max(1, n)

    def add(self, name: str, step: int, value: float) -> None:
        if name in self.series and np.isfinite(value):
            self.series[name][step] = value

    def points(self, name: str) -> int:
        return len(self.series[name])

    def redraw(self) -> None:
        per = self.steps_per_epoch or 1
        for name, curve, scale in (("batch_loss", self.batch_curve, per),
                                   ("train_loss", self.train_loss, 1)):
            x, y = _xy(self.series[name])
            curve.setData(x / scale, y)
        losses = [v for k in ("batch_loss", "train_loss")
                  for v in self.series[k].values()]
        if losses:
            self.loss_plot.setYRange(0, max(losses) * 1.1, padding=0.02)
        values = []
        for key, curve in self.psnr_curves.items():
            x, y = _xy(self.series[key])
            curve.setData(x, y)
            values += list(y)
        if values:
            self.psnr_plot.setYRange(min(values) - 1, max(values) + 1, padding=0.02)
        last = max((e for k in ("train_loss", *PSNR_KEYS) for e in self.series[k]),
                   default=0)
        if last > self.epochs:
            self.epochs = int(last)
            for plot in (self.loss_plot, self.psnr_plot):
                plot.setXRange(0, self.epochs, padding=0.02)


def _xy(points: dict[float, float]) -> tuple[np.ndarray, np.ndarray]:
    if not points:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(sorted(points.items()), dtype=float)
    return arr[:, 0], arr[:, 1]
