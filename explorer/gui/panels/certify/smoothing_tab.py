"""The Randomized smoothing tab: certified radii next to attacks.

"Certify" runs ``certify_job`` (Cohen et al.'s CERTIFY) with the session's
model as the base classifier on the first N images of the session's data;
the certified-accuracy curve grows as each image is done and the image
strip marks each one (green certified right, red wrong, grey abstained).
"Attack" runs ``empirical_job`` on the same images: PGD-l2 on the base
model and on the smoothed one (EOT through the noise), drawn on the same
plot, so the gap between guarantee and attack shows. Clicking an image
shows its class counts and radius.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from explorer.core import models
from explorer.core.certify.empirical import EMPIRICAL_PARAMS, empirical_job
from explorer.core.certify.smoothing import (
    ALPHA,
    SAMPLES,
    SAMPLES0,
    SIGMA,
    certify_job,
    check_params,
    check_radii,
    max_radius,
)
from explorer.core.jobs import Snapshot
from explorer.core.params import Param, ParamError
from explorer.gui.context import AppContext
from explorer.gui.panels.certify.smoothing_views import CountsView, RadiusPlot
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc
from explorer.gui.widgets.job_controls import ERROR_STYLE, FollowsJob, JobControls
from explorer.gui.widgets.param_form import ParamForm

IMAGES = Param("images", int, 20, "certify the first N images of the data set",
               minimum=1, maximum=10_000)
RADII = Param("radii", str, "0,0.25,0.5,0.75,1.0", "l2 radii where certified and "
              "empirical accuracy are compared (comma-separated)")
MARKS = {"right": "#b7e4c7", "wrong": "#f4b6b6", "abstain": "#d9d9d9"}
SLOT, ATTACK_SLOT = "certify/smoothing", "certify/empirical"
STRIP_MAX = 240  # thumbnails in the strip; the curve counts every image


class SmoothingTab(QWidget, FollowsJob):
    """Settings and two job rows on the left; the plot, the counts of the
    chosen image and the image strip on the right."""

    certified = Signal(dict)
    attacked = Signal(dict)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}
        self.radii: list[float | None] = []
        self.levels: tuple[float, ...] = ()
        self.sigma = SIGMA.default
        self.results: dict[str, Any] | None = None
        self.empirical: dict[str, Any] | None = None
        self._empirical_points: list[tuple[float, float, float]] = []
        self.chosen = -1
        self._build()
        ctx.session.data_changed.connect(self.on_source_changed)
        ctx.session.model_changed.connect(self.on_source_changed)
        self.on_source_changed()

    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(ERROR_STYLE)
        self.form = ParamForm((SIGMA, SAMPLES0, SAMPLES, ALPHA, IMAGES, RADII))
        self.controls = JobControls("Certify", bar_below=True)
        self.controls.run_requested.connect(self.run)
        self.run_button = self.controls.run_button
        self.run_button.setToolTip("CERTIFY (Cohen et al. 2019) on the first N "
                                   "images with the session's model as base "
                                   "classifier")
        cert_box = QGroupBox("Certify (randomized smoothing)")
        cl = QVBoxLayout(cert_box)
        cl.addWidget(self.form)
        cl.addWidget(self.controls)
        self.attack_form = ParamForm(EMPIRICAL_PARAMS)
        self.attack_controls = JobControls("Attack", bar_below=True)
        self.attack_controls.run_requested.connect(self.run_attack)
        self.attack_button = self.attack_controls.run_button
        self.attack_button.setToolTip("PGD-l2 at each radius on the same images: "
                                      "the base model, and the smoothed model "
                                      "with EOT through the noise")
        attack_box = QGroupBox("Attack the same images (PGD-l2)")
        al = QVBoxLayout(attack_box)
        note = QLabel("A cheap attack by default: an upper bound on robust "
                      "accuracy; the certified curve is a lower bound.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #444; font-size: 11px;")
        al.addWidget(note)
        al.addWidget(self.attack_form)
        al.addWidget(self.attack_controls)
        left = QWidget()
        left.setFixedWidth(290)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        for w in (self.banner, cert_box, attack_box):
            ll.addWidget(w)
        ll.addStretch(1)
        self.plot = RadiusPlot()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.counts = CountsView()
        self.grid = ImageGrid(columns=12, tile=40)
        self.grid.clicked.connect(self.choose_image)
        strip = QWidget()  # the tiles keep their size; the rest stays empty
        sl = QVBoxLayout(strip)
        sl.addWidget(self.grid)
        sl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(strip)
        scroll.setWidgetResizable(True)
        scroll.setMinimumHeight(120)
        top = QSplitter()
        top.addWidget(self.plot)
        top.addWidget(self.counts)
        top.setSizes([560, 380])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top)
        right.addWidget(scroll)
        right.setSizes([560, 140])
        side = QVBoxLayout()
        side.addWidget(self.summary)
        side.addWidget(right, 1)
        root = QHBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        root.addWidget(left)
        root.addLayout(side, 1)

    # -- state ----------------------------------------------------------------
    def problem(self) -> str | None:
        """Why nothing can be certified now, in words; None when all is fine."""
        s = self.ctx.session
        if s.dataset is None:
            return "Choose a data set on the Data & Model page."
        if len(tuple(getattr(s.dataset.info, "shape", ()))) != 3:
            return (f"'{s.data_name}' is a 2-D toy set; randomized smoothing here "
                    "certifies image classifiers. Choose an image data set.")
        if s.model is None:
            return "Choose a model on the Data & Model page (e.g. fmnist-cnn-gaussian)."
        try:
            models.check_compatible(s.model, s.dataset.info)
        except models.ModelError as exc:
            return f"The model does not fit the data: {exc}"
        return None

    def settings(self) -> dict[str, Any]:
        """The form's values, validated; ParamError naming the bad one."""
        v = self.form.values()
        cfg = check_params(sigma=v["sigma"], samples0=v["samples0"],
                           samples=v["samples"], alpha=v["alpha"])
        cfg["images"] = IMAGES.validate(v["images"])
        cfg["radii"] = check_radii(str(v["radii"]).replace(" ", "").split(","))
        return cfg

    def classes(self) -> list[str]:
        return [str(c) for c in getattr(self.ctx.session.dataset, "classes", ()) or ()]

    @Slot()
    def on_source_changed(self) -> None:
        problem = self.problem()
        self.banner.setText(problem or "")
        self.banner.setVisible(problem is not None)
        self.controls.set_run_enabled(problem is None)
        self.attack_controls.set_run_enabled(problem is None)

    # -- certify --------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        problem = self.problem()
        if problem is None:
            try:
                cfg = self.settings()
            except ParamError as exc:
                problem = str(exc)
        if problem is not None:
            self.controls.say(problem, error=True)
            return
        s = self.ctx.session
        n = min(cfg["images"], len(s.dataset))
        self.sigma, self.levels = cfg["sigma"], cfg["radii"]
        self.snapshots, self.radii, self.results, self.chosen = {}, [], None, -1
        self.plot.reset(self.levels, max_radius(cfg["sigma"], cfg["samples"],
                                                cfg["alpha"]))
        self._show_strip(n)
        self.summary.setText("")
        config = {"model": s.model_source, "data": s.data_name, "split": s.split,
                  "n": n, **{k: list(v) if isinstance(v, tuple) else v
                             for k, v in cfg.items() if k != "images"},
                  "device": str(s.device)}
        recorder = self.ctx.run_recorder("certify", config,
                                         title=f"certify {s.model_source}")
        handle = self.ctx.runner.start(
            certify_job, name="certify", slot=SLOT,
            job_args=(s.model, s.dataset, n), recorder=recorder,
            sigma=cfg["sigma"], samples0=cfg["samples0"], samples=cfg["samples"],
            alpha=cfg["alpha"], radii=cfg["radii"], device=s.device)
        self.controls.follow(handle, f"certifying {n} images…",
                             snapshot=self._on_snapshot, done=self._on_done)

    def _show_strip(self, n: int) -> None:
        ds = self.ctx.session.dataset
        shown = min(n, STRIP_MAX)
        self.grid.set_images([chw_to_hwc(ds[i][0].numpy()) for i in range(shown)],
                             ["…"] * shown)
        self.grid.set_marked({})

    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        a = event.arrays
        i = int(a["index"])
        self.snapshots[i] = a
        pred, label, radius = int(a["prediction"]), int(a["label"]), float(a["radius"])
        right = pred == label
        self.radii.append(radius if right else None)
        self.plot.set_certified(self.radii, self.levels)
        if i < len(self.grid.captions):
            self.grid.set_caption(i, f"r {radius:.2f}" if right else
                                  "abstain" if pred < 0 else "wrong")
        if self.chosen < 0:
            self.choose_image(i)
        else:
            self.grid.set_marked(self._marks())

    def _marks(self) -> dict[int, str]:
        """Tile colours: certified right, wrong, abstained; the chosen one."""
        marks = {}
        for j, a in self.snapshots.items():
            pred = int(a["prediction"])
            kind = ("right" if pred == int(a["label"]) else
                    "abstain" if pred < 0 else "wrong")
            marks[j] = MARKS[kind]
        if self.chosen >= 0:
            marks[self.chosen] = "#9ec5fe"
        return marks

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self.results = results
        acc = ", ".join(f"{r:g}: {100 * v:.0f}%"
                        for r, v in results["certified_acc"].items())
        self.summary.setText(
            f"Certified accuracy at radius {acc} — {results['n']} images, σ "
            f"{results['sigma']:g}, n {results['samples']}, α {results['alpha']:g}; "
            f"smoothed clean {100 * results['clean_acc']:.0f}%, abstained "
            f"{100 * results['abstain_rate']:.0f}%; no radius above "
            f"{results['max_radius']:.3g} is certifiable with n {results['samples']}.")
        self.controls.say(f"done in {results['seconds']:.1f} s.")
        self.certified.emit(results)

    @Slot(int)
    def choose_image(self, index: int) -> None:
        arrays = self.snapshots.get(index)
        if arrays is None:
            return
        self.chosen = index
        self.grid.set_marked(self._marks())
        self.counts.show_image(index, arrays, self.classes(), self.sigma)

    # -- attack ---------------------------------------------------------------
    @Slot()
    def run_attack(self) -> None:
        problem = self.problem()
        if problem is None:
            try:
                cfg = self.settings()
                extra = self.attack_form.values()
            except ParamError as exc:
                problem = str(exc)
        if problem is not None:
            self.attack_controls.say(problem, error=True)
            return
        s = self.ctx.session
        n = min(cfg["images"], len(s.dataset))
        self._empirical_points, self.empirical = [], None
        self.plot.clear_empirical()
        if not self.levels:
            self.levels = cfg["radii"]
            self.plot.reset(self.levels, max_radius(cfg["sigma"], cfg["samples"],
                                                    cfg["alpha"]))
        self.plot.widen(cfg["radii"])
        config = {"model": s.model_source, "data": s.data_name, "split": s.split,
                  "n": n, "sigma": cfg["sigma"], "radii": list(cfg["radii"]),
                  **extra, "device": str(s.device)}
        recorder = self.ctx.run_recorder("certify-attack", config,
                                         title=f"PGD-l2 vs smoothing {s.model_source}")
        handle = self.ctx.runner.start(
            empirical_job, name="attack smoothed", slot=ATTACK_SLOT,
            job_args=(s.model, s.dataset, n), recorder=recorder,
            sigma=cfg["sigma"], radii=cfg["radii"], alpha=cfg["alpha"],
            device=s.device, **extra)
        self.attack_controls.follow(handle, f"attacking {n} images…",
                                    snapshot=self._on_attack_snapshot,
                                    done=self._on_attack_done)

    @Slot(object)
    def _on_attack_snapshot(self, event: Snapshot) -> None:
        a = event.arrays
        self._empirical_points.append((float(a["radius"]), float(a["base_acc"]),
                                       float(a["smoothed_acc"])))
        r, base, smoothed = zip(*self._empirical_points, strict=True)
        self.plot.set_empirical(r, base, smoothed)

    @Slot(dict)
    def _on_attack_done(self, results: dict) -> None:
        self.empirical = results
        self.attack_controls.say(f"done in {results['seconds']:.1f} s; "
                                 f"{results['note']}.")
        self.attacked.emit(results)

    # -- both jobs --------------------------------------------------------------
    @property
    def attack_running(self) -> bool:
        return self.attack_controls.running

    def cancel(self) -> None:
        self.controls.cancel()
        self.attack_controls.cancel()
