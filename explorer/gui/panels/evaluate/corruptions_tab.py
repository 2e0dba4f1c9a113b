"""The Evaluate page's Corruptions tab: accuracy under Gaussian noise and
rotation, and where PGD sends each class (the adversarial confusion matrix).

"Run corruptions" starts ``corruptions_job`` (its own runner slot, so the
page's evaluation is neither slowed nor cancelled by it) on the page's
checked models, data, image count and eps. The two plots get one curve per
model as each setting is done; the heat map shows the model chosen in its
combo.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from explorer.core.analysis.corruption import (
    ANGLES,
    CONFUSION_STEPS,
    SIGMAS,
    confusion_params,
    corruptions_job,
)
from explorer.core.jobs import Progress, Snapshot
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.panels.evaluate.compare_views import MAX_MODELS
from explorer.gui.panels.evaluate.model_checklist import ModelChecklist
from explorer.gui.panels.evaluate.settings_box import EvalSettings
from explorer.gui.widgets.job_controls import FollowsJob, JobControls
from explorer.gui.widgets.plots import CLASS_COLORS, HeatMap, OutsideLegend

SLOT = "evaluate/corruptions"
COLUMN_CHARS = 5  # a class name under a heat map column, in small type
CURVES = {"noise": ("Accuracy under Gaussian noise", "noise σ (pixel units)",
                    "sigma", max(SIGMAS)),
          "rotation": ("Accuracy under rotation", "rotation angle (degrees)",
                       "angle", max(ANGLES))}


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


class AccuracyCurves(pg.PlotWidget):
    """Accuracy (%) against one corruption's strength, one curve per model
    (curves made once, filled with ``setData``)."""

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title, x_label, self.key, x_max = CURVES[kind]
        plot = self.getPlotItem()
        plot.setTitle(title)
        plot.setLabel("bottom", x_label)
        plot.setLabel("left", "accuracy (%)")
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setYRange(0, 100, padding=0.05)
        plot.setXRange(0, x_max, padding=0.03)
        plot.getAxis("left").setWidth(44)
        # sigma reads as itself (0.05), never as "50 (x0.001)"
        plot.getAxis("bottom").setSIPrefixEnableRanges(((math.inf, math.inf),))
        self.setMouseEnabled(x=False, y=False)
        self.legend = OutsideLegend(plot, max_chars=24)
        self.curves = [plot.plot(pen=pg.mkPen(CLASS_COLORS[i], width=2), symbol="o",
                                 symbolSize=5, symbolBrush=CLASS_COLORS[i])
                       for i in range(MAX_MODELS)]
        self.kind = kind

    def prepare(self, names: Sequence[str]) -> None:
        self.legend.clear()
        for i, curve in enumerate(self.curves):
            curve.setData([], [])
            if i < len(names):
                self.legend.addItem(curve, names[i])

    def set_curve(self, i: int, arrays: dict[str, np.ndarray]) -> None:
        if i < len(self.curves):
            self.curves[i].setData(np.asarray(arrays[self.key], dtype=float),
                                   100 * np.asarray(arrays[f"{self.kind}_acc"]))

    def points(self, i: int) -> int:
        """How many points model ``i``'s curve has."""
        x = self.curves[i].xData
        return 0 if x is None else len(x)


class CorruptionsTab(QWidget, FollowsJob):
    """Run button and status, the noise and rotation curves side by side,
    and the chosen model's adversarial confusion matrix below."""

    corruptions_done = Signal(dict)

    def __init__(self, ctx: AppContext, models: ModelChecklist,
                 settings: EvalSettings, problem: Callable[[], str | None],
                 parent: QWidget | None = None) -> None:
        """``models``, ``settings`` and ``problem``: the page's checklist, its
        settings (image count, eps) and what it finds wrong with the data or
        the choice of models."""
        super().__init__(parent)
        self.ctx, self.models, self.settings = ctx, models, settings
        self._problem = problem
        self.names: list[str] = []
        self.classes: list[str] = []
        self.matrices: dict[int, np.ndarray] = {}  # model index -> confusion
        self.results: dict[str, Any] | None = None
        self.eps = 0.0  # the last run's
        self.controls = JobControls("Run corruptions", compact=True)
        self.controls.run_requested.connect(self.run)
        self.run_button = self.controls.run_button
        self.run_button.setToolTip(
            "the checked models on the first N images of the page's data: "
            "Gaussian noise and rotation, then PGD-20 at the page's eps")
        self.about = QLabel()
        self.about.setWordWrap(True)
        self.about.setStyleSheet("color: #444; font-size: 11px;")
        self.noise = AccuracyCurves("noise")
        self.rotation = AccuracyCurves("rotation")
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("whose confusion matrix is shown")
        self.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        self.heat = HeatMap("Adversarial confusion (counts)",
                            "predicted class after the attack", "true class")
        small = QFont()
        small.setPointSize(7)
        self.heat.plot.getAxis("bottom").setStyle(tickFont=small)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Confusion matrix of"))
        pick.addWidget(self.model_combo, 1)
        lower = QWidget()
        low = QVBoxLayout(lower)
        low.setContentsMargins(0, 0, 0, 0)
        low.addLayout(pick)
        low.addWidget(self.summary)
        low.addWidget(self.heat, 1)
        curves = QSplitter(Qt.Orientation.Vertical)
        curves.addWidget(self.noise)
        curves.addWidget(self.rotation)
        split = QSplitter()
        split.addWidget(curves)
        split.addWidget(lower)
        split.setSizes([450, 520])
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(self.controls)
        box.addWidget(self.about)
        box.addWidget(split, 1)
        self.settings.n.valueChanged.connect(self._describe)
        self.settings.eps.valueChanged.connect(self._describe)
        self._describe()

    # -- state ------------------------------------------------------------------
    def _eps(self) -> float:
        try:  # a custom suite's largest budget, as the masking checks use
            return float(self.settings.job_settings()["eps"])
        except ParamError:
            return float(self.settings.values()["eps"])

    @Slot()
    def _describe(self) -> None:
        eps = self._eps()
        self.about.setText(
            f"Gaussian noise σ {', '.join(f'{s:g}' for s in SIGMAS)}; rotation "
            f"{', '.join(f'{a:g}' for a in ANGLES)}°; PGD-{CONFUSION_STEPS} at eps "
            f"{eps:.4g} ({255 * eps:.3g}/255) for the confusion matrix; on the "
            f"first {self.settings.values()['n']} images.")

    def problem(self) -> str | None:
        if (problem := self._problem()) is not None:
            return problem
        try:
            confusion_params(self._eps())
        except ParamError as exc:
            return str(exc)
        return None

    # -- run ----------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        if (problem := self.problem()) is not None:
            self.controls.say(problem, error=True)
            return
        s, chosen = self.ctx.session, self.models.checked()
        eps, n = self._eps(), int(self.settings.values()["n"])
        self.names = [c.name for c in chosen]
        self.classes = [str(c) for c in getattr(s.dataset, "classes", ())]
        self.results, self.matrices, self.eps = None, {}, eps
        for view in (self.noise, self.rotation):
            view.prepare(self.names)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(self.names)
        self.model_combo.blockSignals(False)
        self.heat.set_matrix(np.zeros((0, 0)), [])
        self.summary.setText("")
        config = {"models": {c.name: c.source for c in chosen}, "data": s.data_name,
                  "split": s.split, "corruptions": True, "eps": eps, "n": n,
                  "sigmas": list(SIGMAS), "angles": list(ANGLES),
                  "device": str(s.device)}
        recorder = self.ctx.run_recorder(
            "eval", config, title=f"corruptions: {', '.join(self.names)}")
        handle = self.ctx.runner.start(
            corruptions_job, name="corruptions", slot=SLOT,
            job_args=({c.name: c.loader() for c in chosen}, s.dataset, n),
            recorder=recorder, eps=eps, device=s.device)
        self.controls.follow(handle, f"corruptions of {len(chosen)} model(s) on "
                                     f"{n} images…", snapshot=self._on_snapshot,
                             progress=self._on_progress, done=self._on_done)

    # -- events -------------------------------------------------------------------
    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        if event.label == "noise":
            self.noise.set_curve(event.step, event.arrays)
        elif event.label == "rotation":
            self.rotation.set_curve(event.step, event.arrays)
        elif event.label == "confusion":
            self.matrices[event.step] = np.asarray(event.arrays["confusion"])
            if event.step == self.model_combo.currentIndex():
                self._show_matrix()

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        if event.label:
            self.controls.say(event.label)

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self.results = results
        self._show_matrix()
        self.controls.say(f"done in {results['seconds']:.1f} s on "
                          f"{results['n']} images.")
        self.corruptions_done.emit(results)

    @Slot(int)
    def _on_model_chosen(self, _index: int) -> None:
        self._show_matrix()

    def _show_matrix(self) -> None:
        i = self.model_combo.currentIndex()
        matrix = self.matrices.get(i)
        if matrix is None:
            self.heat.set_matrix(np.zeros((0, 0)), [])
            self.summary.setText("The matrix appears when this model is done."
                                 if i >= 0 else "")
            return
        k = matrix.shape[0]
        names = (self.classes + [str(c) for c in range(len(self.classes), k)])[:k]
        self.heat.set_matrix(matrix, names)
        # names under the columns too, shortened to fit (the rows say them whole)
        self.heat.plot.getAxis("bottom").setTicks(
            [[(j + 0.5, _short(name, COLUMN_CHARS)) for j, name in enumerate(names)]])
        self.heat.setToolTip("rows: true class, columns: class predicted on the "
                             "adversarial image; " + ", ".join(
                                 f"{j} {name}" for j, name in enumerate(names)))
        kept = int(np.trace(matrix))
        total = int(matrix.sum())
        report = ((self.results or {}).get("models", {})
                  .get(self.names[i], {}).get("adversarial_confusion", {}))
        robust = report.get("robust_acc")
        extra = (f"; robust accuracy (right before and after) {100 * robust:.1f}%"
                 if robust is not None else "")
        self.summary.setText(
            f"{self.names[i]}: {kept} of {total} images still classified right "
            f"after PGD-{CONFUSION_STEPS} at eps {self.eps:.4g}{extra}; the "
            f"off-diagonal cells say which class each attack pushed them into.")
