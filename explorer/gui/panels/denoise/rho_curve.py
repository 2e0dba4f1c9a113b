"""PSNR of the denoised image against the perturbation's size: ObsAtk (solid)
and the random zero-mean baseline of the same norm (dashed), one colour per
denoiser, with a marker at the budget the slider shows."""

from __future__ import annotations

import copy

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QWidget
from torch import nn

from explorer.core.denoise import psnr_vs_rho, rms_to_rho
from explorer.core.jobs import Metric, Progress
from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend

SWEEP_RMS = (0.0, 1.0, 2.0, 4.0, 6.0, 8.0)  # k/255
SWEEP_STEPS = 10  # ObsAtk steps at most, per point of the curve
X_LABEL = "RMS perturbation (/255)"
Y_LABEL = "PSNR (dB)"


class RhoCurve(pg.PlotWidget):
    """Curves are made in :meth:`reset` (once per sweep, not per point) and
    filled with ``setData`` as the sweep's metrics arrive."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Denoised PSNR vs perturbation size")
        self.setLabel("bottom", X_LABEL)
        self.setLabel("left", Y_LABEL)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.getPlotItem().getAxis("left").setWidth(44)
        # two columns: each denoiser's ObsAtk and random curves on one row
        self.legend = OutsideLegend(self.getPlotItem(), max_columns=2)
        dotted = pg.mkPen("#555", width=1, style=Qt.PenStyle.DotLine)
        self.marker = pg.InfiniteLine(angle=90, pen=dotted)
        self.addItem(self.marker)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.points: dict[str, dict[int, tuple[float, float]]] = {}
        self.rms255: list[float] = []

    def reset(self, names: list[str], rms255: list[float]) -> None:
        """Empty curves for these denoisers at these budgets (k/255)."""
        for curve in self.curves.values():
            self.removeItem(curve)
        self.legend.clear()
        self.curves, self.points, self.rms255 = {}, {}, list(rms255)
        for i, name in enumerate(names):
            color = CLASS_COLORS[i % len(CLASS_COLORS)]
            for key, style, label in (
                    (f"psnr/{name}", Qt.PenStyle.SolidLine, f"{name} ObsAtk"),
                    (f"psnr_random/{name}", Qt.PenStyle.DashLine,
                     f"{name} random")):
                curve = self.plot(pen=pg.mkPen(color, width=2, style=style),
                                  symbol="o" if "random" not in key else None,
                                  symbolSize=5, symbolBrush=color, name=label)
                self.curves[key], self.points[key] = curve, {}
        if rms255:
            self.setXRange(0, max(rms255), padding=0.04)

    def add_point(self, key: str, index: int, psnr: float) -> None:
        """The sweep's metric ``key`` (``psnr/<name>``) at budget ``index``."""
        if key not in self.curves or index >= len(self.rms255):
            return
        self.points[key][index] = (self.rms255[index], min(psnr, 100.0))
        xy = np.asarray(sorted(self.points[key].values()))
        self.curves[key].setData(xy[:, 0], xy[:, 1])

    @Slot(float)
    def set_marker(self, rms: float) -> None:
        """Mark the budget ``rms`` (in [0, 1]; drawn at rms·255)."""
        self.marker.setValue(rms * 255)

    def filled(self, key: str) -> int:
        return len(self.points.get(key, {}))


class RhoSweep(QObject):
    """Runs ``psnr_vs_rho`` (slot ``denoise/sweep``) into a :class:`RhoCurve`;
    ``message`` carries progress and failures in words."""

    done = Signal()
    message = Signal(str)
    stopped = Signal()  # done, failed or cancelled

    def __init__(self, ctx, curve: RhoCurve, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.curve, self.job = ctx, curve, None

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self, models: dict[str, nn.Module], dataset, values: dict, n: int,
              rms255: tuple[float, ...] = SWEEP_RMS) -> None:
        """``values``: the live attack's kind, level and steps (capped)."""
        shape = tuple(dataset.info.shape)
        rhos = [rms_to_rho(k / 255, shape) for k in rms255]
        # Copies: a new live attack may use the models while the sweep runs.
        models = {name: copy.deepcopy(m) for name, m in models.items()}
        self.curve.reset(list(models), list(rms255))
        self.job = self.ctx.runner.start(
            psnr_vs_rho, name="PSNR vs rho", slot="denoise/sweep",
            job_args=(models, dataset, rhos), kind=values["kind"],
            level=values["level"], steps=min(values["steps"], SWEEP_STEPS), n=n)
        for name in ("metric", "progress", "done", "failed", "finished"):
            getattr(self.job, name).connect(getattr(self, f"_on_{name}"))

    def cancel(self) -> None:
        if self.running:
            self.job.cancel()

    @Slot(object)
    def _on_metric(self, event: Metric) -> None:
        self.curve.add_point(event.name, event.step, event.value)

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        self.message.emit(f"PSNR vs ρ: {event.label} ({event.done}/{event.total})")

    @Slot(dict)
    def _on_done(self, _results: dict) -> None:
        self.done.emit()

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.message.emit(f"PSNR vs ρ failed: {text}")

    @Slot()
    def _on_finished(self) -> None:
        self.job = None
        self.stopped.emit()
