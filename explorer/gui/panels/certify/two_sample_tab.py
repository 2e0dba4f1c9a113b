"""The Certify & Detect page's Two-sample tab: can an attack hide a
difference between two distributions from a two-sample test?

Its button starts ``two_sample_data_job`` (through the runner, with
progress and cancel) on the built-in data's training split: per trial, a
sample X from P and Y from Q (the chosen pair), the attacked Y within the
l-inf budget eps, and permutation tests (Gaussian-kernel MMD, deep-kernel
MMD, an adversarially trained deep kernel and their ensemble). The view
shows the latest trial's first images of X, Y and attacked Y side by side,
the deep-kernel test's statistic against its permutation null (histogram;
vertical lines at the observed statistics, clean and attacked), and the
four rates so far: type-I error, power, power under attack, and the
defended ensemble's power under attack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core.certify.two_sample_job import (
    PAIRS,
    TWO_SAMPLE_PARAMS,
    two_sample_data_job,
)
from explorer.core.jobs import Snapshot
from explorer.gui.context import AppContext
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc
from explorer.gui.widgets.job_controls import FollowsJob, JobControls
from explorer.gui.widgets.plots import OutsideLegend

SLOT = "certify/two-sample"
DATA, SPLIT = "fashion-mnist-mini", "train"
FIGURES = (("type1", "Type-I error"), ("power", "Power (deep kernel)"),
           ("power_attacked", "Power under attack"),
           ("power_defended", "Defended power under attack"))
_DEFAULTS = {p.name: p for p in TWO_SAMPLE_PARAMS}


def _spin(name: str, tip: str) -> QSpinBox:
    p = _DEFAULTS[name]
    box = QSpinBox()
    box.setRange(int(p.minimum or 0), int(p.maximum or 10_000))
    box.setValue(int(p.default))
    box.setToolTip(tip)
    return box


def _double(name: str, tip: str) -> QDoubleSpinBox:
    p = _DEFAULTS[name]
    box = QDoubleSpinBox()
    box.setDecimals(3)
    box.setSingleStep(0.01)
    box.setRange(float(p.minimum or 0), float(p.maximum or 1))
    box.setValue(float(p.default))
    box.setToolTip(tip)
    return box


class NullHistogram(pg.PlotWidget):
    """The permutation null of the statistic (clean pair filled, attacked
    pair outlined) with the observed statistics as vertical lines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setTitle("Deep-kernel MMD² against its permutation null")
        self.setLabel("bottom", "MMD² (unbiased)")
        self.setLabel("left", "permutations")
        OutsideLegend(self.getPlotItem(), size="9pt", labelTextColor="k")
        self.clean_null = self.plot([], [], stepMode="center", fillLevel=0,
                                    brush=(120, 120, 120, 110), pen="#555",
                                    name="null, clean pair")
        self.attacked_null = self.plot([], [], stepMode="center",
                                       pen=pg.mkPen("#ff7f0e", width=2),
                                       name="null, attacked pair")
        self.stat_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#1f77b4", width=3),
                                         label="clean",
                                         # the labels at two heights
                                         labelOpts={"position": 0.6,
                                                    "color": "#1f77b4"})
        self.attacked_line = pg.InfiniteLine(
            angle=90, pen=pg.mkPen("#d62728", width=3, style=Qt.PenStyle.DashLine),
            label="attacked", labelOpts={"position": 0.75, "color": "#d62728"})
        for line in (self.stat_line, self.attacked_line):
            line.setVisible(False)
            self.addItem(line)
        self.stats: tuple[float, float] | None = None

    def show_trial(self, arrays: dict[str, np.ndarray]) -> None:
        null, null_adv = arrays["null"], arrays["null_attacked"]
        stat, stat_adv = float(arrays["stat"]), float(arrays["stat_attacked"])
        everything = np.concatenate([null, null_adv, [stat, stat_adv]])
        edges = np.histogram_bin_edges(everything, bins=30)
        for curve, values in ((self.clean_null, null),
                              (self.attacked_null, null_adv)):
            counts, _ = np.histogram(values, bins=edges)
            curve.setData(edges, counts)
        self.stat_line.setValue(stat)
        self.attacked_line.setValue(stat_adv)
        for line in (self.stat_line, self.attacked_line):
            line.setVisible(True)
        self.stats = (stat, stat_adv)


class TwoSampleTab(QWidget, FollowsJob):
    """Settings, a button with progress and cancel, the samples, the null
    histogram and the four rates."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.results: dict[str, Any] | None = None
        self.trials_seen = 0
        self.pair = QComboBox()
        for name, spec in PAIRS.items():
            self.pair.addItem(name, name)
            self.pair.setItemData(self.pair.count() - 1, spec.text,
                                  Qt.ItemDataRole.ToolTipRole)
        self.n = _spin("n_per_sample", "images in each sample; the kernels are "
                       "trained on another pair of this size")
        self.trials = _spin("trials", "repeated trials the rates are taken over")
        self.alpha = _double("alpha", "level of every test, in (0, 1)")
        self.eps = _double("eps", "l-inf budget of the attack on the second "
                           "sample (pixels in [0, 1])")
        self.steps = _spin("steps", "PGD steps of the attack")
        self.epochs = _spin("epochs", "training epochs of each deep kernel")
        self.pair_text = QLabel()
        self.pair_text.setWordWrap(True)
        self.pair_text.setStyleSheet("color: #444; font-size: 11px;")
        self.pair.currentIndexChanged.connect(self._show_pair)
        self._show_pair()
        self.controls = JobControls("Run tests", bar_below=True)
        self.controls.run_requested.connect(self.run)
        self.run_button = self.controls.run_button
        self.status = self.controls.status
        form = QFormLayout()
        for label, widget in (("Pair", self.pair), ("", self.pair_text),
                              ("Per sample", self.n), ("Trials", self.trials),
                              ("Alpha", self.alpha), ("Eps (l-inf)", self.eps),
                              ("Attack steps", self.steps),
                              ("Kernel epochs", self.epochs)):
            form.addRow(label, widget)
        self.figures: dict[str, QLabel] = {}
        figures = QGridLayout()
        for i, (key, title) in enumerate(FIGURES):
            value = QLabel("–")
            value.setStyleSheet("font-size: 18px; font-weight: 600;")
            self.figures[key] = value
            figures.addWidget(QLabel(title), i, 0)
            figures.addWidget(value, i, 1)
        self.breakdown = QLabel()
        self.breakdown.setWordWrap(True)
        self.breakdown.setStyleSheet("color: #444; font-size: 11px;")
        self.breakdown.setToolTip("each test's type-I error, power and power "
                                  "under the joint attack over the trials")
        side = QVBoxLayout()
        side.addLayout(form)
        side.addWidget(self.controls)
        side.addLayout(figures)
        side.addWidget(self.breakdown)
        side.addStretch(1)
        self.grids = {key: ImageGrid(columns=4, tile=48) for key in
                      ("x", "y", "y_adv")}
        samples = QHBoxLayout()
        self.grid_titles: dict[str, QLabel] = {}
        for key, title in (("x", "Sample X (from P)"), ("y", "Sample Y (from Q)"),
                           ("y_adv", "Y attacked")):
            column = QVBoxLayout()
            self.grid_titles[key] = QLabel(title)
            column.addWidget(self.grid_titles[key])
            column.addWidget(self.grids[key])
            column.addStretch(1)
            samples.addLayout(column)
        self.histogram = NullHistogram()
        view = QVBoxLayout()
        view.addLayout(samples)
        view.addWidget(self.histogram, 1)
        box = QHBoxLayout(self)
        box.addLayout(side)
        box.addLayout(view, 1)

    @Slot()
    def _show_pair(self) -> None:
        self.pair_text.setText(PAIRS[str(self.pair.currentData())].text)

    def settings(self) -> dict[str, Any]:
        return {"pair": str(self.pair.currentData()), "n_per_sample": self.n.value(),
                "trials": self.trials.value(), "alpha": self.alpha.value(),
                "eps": self.eps.value(), "steps": self.steps.value(),
                "epochs": self.epochs.value()}

    @Slot()
    def run(self) -> None:
        values = self.settings()
        if not 0 < values["alpha"] < 1:
            self.controls.say(f"alpha must be in (0, 1), got {values['alpha']:g}",
                              error=True)
            return
        config = {"data": DATA, "split": SPLIT, **values,
                  "device": str(self.ctx.session.device)}
        recorder = self.ctx.run_recorder("two-sample", config,
                                         title=f"two-sample tests ({values['pair']})")
        self.results, self.trials_seen = None, 0
        for label in self.figures.values():
            label.setText("–")
        self.breakdown.clear()
        handle = self.ctx.runner.start(
            two_sample_data_job, name="two-sample tests", slot=SLOT,
            job_args=(DATA, SPLIT), recorder=recorder,
            device=self.ctx.session.device, **values)
        self.controls.follow(handle, f"{values['trials']} trials of "
                                     f"{values['n_per_sample']} images per sample…",
                             snapshot=self._on_snapshot, done=self._on_done)

    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        if event.label != "trial":
            return
        a = event.arrays
        self.trials_seen = event.step + 1
        for key, grid in self.grids.items():
            grid.set_images([chw_to_hwc(img) for img in a[key]], [""] * len(a[key]))
        self.histogram.show_trial(a)
        for (key, _title), rate in zip(FIGURES, a["rates"], strict=True):
            self.figures[key].setText(f"{rate:.2f}")
        self.grid_titles["y_adv"].setText(
            f"Y attacked (trial {self.trials_seen}/{event.total})")

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self.results = results
        for key, _title in FIGURES:
            self.figures[key].setText(f"{results[key]:.2f}")
        self.breakdown.setText("Per test (type-I / power / attacked):\n" + "\n".join(
            f"{name}: {v['type1']:.2f} / {v['power']:.2f} / {v['power_attacked']:.2f}"
            for name, v in results["tests"].items()))
        self.controls.say(f"done: {results['trials']} trials in "
                          f"{results.get('seconds', 0.0):.1f} s — the defended "
                          "test is the Bonferroni ensemble of all kernels.")
