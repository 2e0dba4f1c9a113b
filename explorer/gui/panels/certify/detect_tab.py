"""The Certify & Detect page's Detect tab: ROC curves of adversarial-example
detectors on the session's model and data.

The checked detectors (kd, lid, non-me; :mod:`explorer.core.certify.detect`)
are fitted on the data set's training split and score the session split's
first ``n`` images and their adversarial versions (the chosen attack at
eps). One ``detect_job`` runs through the runner with progress and cancel;
each detector's ROC curve is drawn as it is ready, its AUC in the legend.
"Adaptive attack" also attacks each detector itself (PGD that lowers its
score) and draws the ROC after it dashed, in the same colour. The plot's
title and the summary name the model scored and the training method its
metadata records (non-ME is meant for reverse cross-entropy models).
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.core.analysis.custom_suite import budget_text, eps_attacks
from explorer.core.certify import detect
from explorer.core.jobs import Snapshot
from explorer.core.params import Param, ParamError
from explorer.gui.context import AppContext
from explorer.gui.widgets.job_controls import FollowsJob, JobControls
from explorer.gui.widgets.param_form import ParamForm
from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend

SLOT = "certify/detect"
PARAMS = (
    Param("attack", str, detect.DEFAULT_ATTACK, "the attack crafting the examples",
          choices=tuple(eps_attacks())),
    Param("eps", float, detect.DEFAULT_EPS, "l-inf budget", minimum=0.0,
          maximum=1.0, unit="px"),
    Param("n", int, 100, "test images scored (those the model gets right, and "
          "their adversarial versions that fool it)", minimum=1, maximum=10_000),
    Param("steps", int, detect.DEFAULT_STEPS, "attack iterations", minimum=1,
          maximum=1000),
    Param("fit_n", int, detect.DEFAULT_FIT_N, "training images the detectors are "
          "fitted on", minimum=1, maximum=60_000, label="fit images"),
)


class RocPlot(pg.PlotWidget):
    """ROC curves, one colour per detector, the adaptive attack's dashed;
    the chance diagonal; AUCs in the legend."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        plot = self.getPlotItem()
        self.set_model("")
        plot.setLabel("bottom", "false positive rate")
        plot.setLabel("left", "true positive rate")
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setXRange(0, 1, padding=0.02)
        plot.setYRange(0, 1, padding=0.02)
        self.setMouseEnabled(x=False, y=False)
        self.diagonal = plot.plot([0, 1], [0, 1], pen=pg.mkPen(
            "#999", width=1, style=Qt.PenStyle.DotLine))
        self.legend = OutsideLegend(plot)
        self.curves: dict[str, pg.PlotDataItem] = {}  # "kd", "kd (adaptive)", …
        self.order: list[str] = []

    def set_model(self, label: str) -> None:
        """Title the plot with the model the curves belong to ("" for none)."""
        on = f" on {label}" if label else ""
        self.getPlotItem().setTitle(
            f"ROC{on}: clean (negatives) vs adversarial (positives)")

    def clear_curves(self, detectors: list[str]) -> None:
        for item in self.curves.values():
            self.getPlotItem().removeItem(item)
        self.legend.clear()
        self.curves = {}
        self.order = list(detectors)

    def set_curve(self, name: str, fpr: np.ndarray, tpr: np.ndarray, auc: float,
                  adaptive: bool = False) -> None:
        key = f"{name} (adaptive)" if adaptive else name
        color = CLASS_COLORS[self.order.index(name) % len(CLASS_COLORS)] \
            if name in self.order else "#333"
        pen = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine if adaptive
                       else Qt.PenStyle.SolidLine)
        if key in self.curves:
            self.getPlotItem().removeItem(self.curves[key])
            self.legend.removeItem(self.curves[key])
        item = self.getPlotItem().plot(np.asarray(fpr), np.asarray(tpr), pen=pen)
        self.curves[key] = item
        label = (f"{name}, adaptive attack: AUC {auc:.3f}" if adaptive
                 else f"{name}: AUC {auc:.3f}")
        self.legend.addItem(item, label)

    def legend_texts(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]


class DetectTab(QWidget, FollowsJob):
    """Detectors to compare, attack settings, Run/Cancel, the ROC plot."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.results: dict[str, Any] | None = None
        self.model_label = ""  # the model of the last run, as the session named it
        self.detectors = QListWidget()
        for name in detect.DETECTORS:
            item = QListWidgetItem(name)
            item.setToolTip(detect.TITLES[name])
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.detectors.addItem(item)
        self.detectors.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.detectors.setFixedHeight(self.detectors.sizeHintForRow(0) * len(
            detect.DETECTORS) + 2 * self.detectors.frameWidth() + 6)
        self.form = ParamForm(PARAMS)
        self.adaptive = QCheckBox("Adaptive attack (knows the detector)")
        self.adaptive.setToolTip(
            "also run PGD that fools the model while lowering each detector's own "
            "score, and draw the ROC after it dashed (Carlini & Wagner: a detector "
            "is only as good as the attack that knows it)")
        self.controls = JobControls("Run detectors", compact=True)
        self.controls.run_requested.connect(self.run)
        self.run_button = self.controls.run_button
        self.status = self.controls.status
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #444; font-size: 11px;")
        self.plot = RocPlot()
        left = QVBoxLayout()
        left.addWidget(QLabel("Detectors (one ROC curve each)"))
        left.addWidget(self.detectors)
        left.addWidget(self.form)
        left.addWidget(self.adaptive)
        left.addWidget(self.controls)
        left.addWidget(self.summary)
        left.addWidget(self.notes)
        left.addStretch(1)
        side = QWidget()
        side.setLayout(left)
        side.setMaximumWidth(380)
        box = QHBoxLayout(self)
        box.addWidget(side)
        box.addWidget(self.plot, 1)

    def checked(self) -> list[str]:
        out = []
        for i in range(self.detectors.count()):
            item = self.detectors.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    def set_checked(self, names: list[str]) -> None:
        for i in range(self.detectors.count()):
            item = self.detectors.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(
                Qt.ItemDataRole.UserRole) in names else Qt.CheckState.Unchecked)

    def problem(self) -> str | None:
        s = self.ctx.session
        if s.dataset is None:
            return "No data set: choose one on the Data & Model page."
        if len(tuple(getattr(s.dataset.info, "shape", ()))) != 3:
            return (f"'{s.data_name}' is a 2-D toy set; the detectors score images. "
                    "Choose an image data set on the Data & Model page.")
        if s.model is None:
            return "No model: load or choose one on the Data & Model page."
        if not self.checked():
            return "Check at least one detector."
        return None

    def _fit_data(self):
        """A loader of the training split when the session's split is another
        one and the set has a training split; else ``None`` (the job fits on
        the images after the first n, and says so)."""
        s = self.ctx.session
        info = s.dataset.info
        if s.split == "train" or "train" not in getattr(info, "splits", ()) \
                or getattr(info, "needs_root", False):
            return None
        from explorer.core import data

        name = s.data_name
        return lambda: data.load(name, "train")

    @Slot()
    def run(self) -> None:
        if (problem := self.problem()) is not None:
            self.controls.say(problem, error=True)
            return
        s, values = self.ctx.session, self.form.values()
        names, adaptive = self.checked(), self.adaptive.isChecked()
        try:
            detect.check_settings(names, **values)
        except ParamError as exc:
            self.controls.say(str(exc), error=True)
            return
        fit_data = self._fit_data()
        config = {"model": s.model_source, "data": s.data_name, "split": s.split,
                  "fit_split": "train" if fit_data is not None else s.split,
                  "detectors": names, **values, "adaptive": adaptive,
                  "device": str(s.device)}
        title = f"detect ({', '.join(names)}, {values['attack']}): {s.model_source}"
        recorder = self.ctx.run_recorder("detect", config, title=title)
        self.results = None
        self.summary.clear()
        self.notes.clear()
        self.plot.clear_curves(names)
        self.model_label = str(s.model_source or "the session's model")
        self.plot.set_model(self.model_label)
        handle = self.ctx.runner.start(
            detect.detect_job, name="detectors", slot=SLOT,
            job_args=(s.model, s.dataset), recorder=recorder, detector=tuple(names),
            adaptive=adaptive, fit_dataset=fit_data, device=s.device, **values)
        self.controls.follow(
            handle, f"{values['attack']} at eps {budget_text(values['eps'])} on "
                    f"{values['n']} images, {len(names)} detector(s)…",
            snapshot=self._on_snapshot, done=self._on_done)

    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        kind, _, name = event.label.partition(":")
        if kind not in ("roc", "roc-adaptive"):
            return
        a = event.arrays
        self.plot.set_curve(name, a["fpr"], a["tpr"], float(a["auc"][0]),
                            adaptive=kind == "roc-adaptive")

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self.results = results
        method = results.get("training_method")
        lines = [f"Model <b>{escape(self.model_label)}</b>"
                 + (f" (trained: {escape(method)})" if method else
                    " (no training method recorded)")]
        for name, r in results["detectors"].items():
            line = (f"<b>{name}</b>: AUC {r['auc']:.3f}, TPR {r['tpr_at_5fpr']:.2f} "
                    "at 5% FPR")
            if "auc_adaptive" in r:
                after = r["auc_adaptive"]
                line += (" → adaptive attack: fooled no image" if after is None
                         else f" → adaptive attack: AUC {after:.3f}")
            lines.append(line)
        self.summary.setText("<br>".join(lines))
        self.notes.setText(
            f"{results['n_clean']} clean test images the model gets right, "
            f"{results['n_adv']} adversarial that fool it; fitted on "
            f"{results['fit_n']} images.<br>" + "<br>".join(results["notes"]))
        self.controls.say(f"done in {results.get('seconds', 0.0):.1f} s.")
