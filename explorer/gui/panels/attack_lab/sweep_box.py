"""Robust accuracy against eps: a curve that grows while the sweep runs.

A click on the curve opens the gallery of the images that break at the
nearest swept eps (``explorer.gui.widgets.eps_gallery``), on the sweep's own
model and images."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from explorer.core.attacks.jobs import eps_sweep
from explorer.gui.context import AppContext
from explorer.gui.panels.attack_lab.batch_box import JobBox
from explorer.gui.widgets.eps_gallery import EpsGallery, GallerySource, nearest_eps

SWEEP_POINTS = 8


def parse_eps_list(text: str) -> list[float]:
    """``"0, 2/255, 0.03"`` → sorted floats; ValueError names the bad entry."""
    values = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(Fraction(part))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"eps values: cannot read {part!r} "
                             "(write e.g. 0, 2/255, 4/255, 0.03)") from None
        if value < 0:
            raise ValueError(f"eps values must be ≥ 0, got {part}")
        values.append(value)
    if not values:
        raise ValueError("eps values: give at least one, e.g. 0, 4/255, 8/255")
    return sorted(set(values))


def default_eps_list(eps: float) -> str:
    """About eight points from 0 to twice the current budget, as k/255."""
    top = max(round(2 * eps * 255), SWEEP_POINTS - 1)
    step = max(1, round(top / (SWEEP_POINTS - 1)))
    ks = sorted({*range(0, top + 1, step), top})
    return ", ".join("0" if k == 0 else f"{k}/255" for k in ks)


class SweepBox(JobBox):
    """Robust accuracy against eps: the curve item is made once and grows by
    ``setData`` as each budget's result arrives."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, "Run sweep", 200, parent)
        self.eps_edit = QLineEdit()
        self.eps_edit.setToolTip("comma-separated budgets in pixel units; "
                                 "8/255 is fine")
        self.plot = pg.PlotWidget(title="Accuracy under attack")
        self.plot.setLabel("bottom", "eps (pixel units)")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setLabel("left", "accuracy (%)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setYRange(0, 100, padding=0.02)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.curve = self.plot.plot(pen=pg.mkPen("#1f77b4", width=2.5), symbol="o",
                                    symbolSize=7, symbolBrush="#1f77b4")
        self.eps: list[float] = []
        self.acc: list[float] = []
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.plot.setToolTip("Click a point: the images that break at that eps")
        self.gallery = EpsGallery(ctx.runner, "attack/min-eps", self)
        self.gallery_source: GallerySource | None = None  # the last sweep's images
        row = QHBoxLayout()
        row.addWidget(QLabel("eps"))
        row.addWidget(self.eps_edit, 1)
        box = QVBoxLayout(self)
        box.addLayout(row)
        box.addWidget(self.controls)
        box.addWidget(self.plot, 1)

    def eps_values(self) -> list[float]:
        return parse_eps_list(self.eps_edit.text())

    def start(self, attack: str, params: dict[str, Any], config: dict) -> None:
        """Sweep ``attack`` over the typed budgets (ValueError if unreadable)."""
        eps_values = self.eps_values()
        s = self.ctx.session
        n = min(self.n.value(), len(s.dataset))
        config = {**config, "mode": "eps sweep", "n": n, "eps_values": eps_values}
        job = self.ctx.runner.start(
            eps_sweep, name=f"eps sweep {attack}", slot="attack/sweep",
            job_args=(s.model, s.dataset), attack=attack, params=params,
            eps_values=eps_values, n=n, seed=0, device=s.device,
            recorder=self.ctx.run_recorder("attack", config),
        )
        norm = str(params.get("norm", "linf"))
        self.gallery_source = GallerySource(
            model=s.model, dataset=s.dataset, n=n, norm=norm,
            name=s.model_source or "the model",
            key=(id(s.model), id(s.dataset), n, norm), device=s.device,
            classes=tuple(getattr(s.dataset, "classes", ())))
        job.snapshot.connect(self._on_point)
        job.done.connect(self._on_done)
        self.set_points([], [])
        self._started(job, f"{len(eps_values)} budgets × {n} images…")

    def set_points(self, eps, acc) -> None:
        """All points so far (eps in pixel units, accuracy as a fraction)."""
        self.eps = [float(e) for e in eps]
        self.acc = [100 * float(a) for a in acc]
        order = np.argsort(self.eps)
        self.curve.setData(np.asarray(self.eps)[order], np.asarray(self.acc)[order])

    @Slot(object)
    def _on_point(self, snapshot) -> None:
        self.set_points(snapshot.arrays["eps"], snapshot.arrays["robust_acc"])

    @Slot(dict)
    def _on_done(self, r: dict) -> None:
        self.set_points(r["eps"], r["robust_acc"])
        self.progress.setValue(self.progress.maximum())
        self.status.setText(
            f"clean accuracy {100 * r['clean_acc']:.1f}% on {r['n']} images; "
            f"{len(r['eps'])} budgets in {r['seconds']:.1f} s. Click a point to "
            "see the images that break at that eps.")

    # -- the gallery of a clicked point -----------------------------------------
    @Slot(object)
    def _on_scene_clicked(self, event) -> None:
        """A left click inside the plot: the nearest swept eps (by x)."""
        vb = self.plot.getPlotItem().getViewBox()
        pos = event.scenePos()
        if (event.button() != Qt.MouseButton.LeftButton or not self.eps
                or not vb.sceneBoundingRect().contains(pos)):
            return
        eps = nearest_eps(self.eps, vb.mapSceneToView(pos).x())
        if eps is not None:
            self.open_gallery(eps)

    @Slot(float)
    def open_gallery(self, eps: float) -> None:
        """The images of the last sweep that break at ``eps``."""
        if self.gallery_source is None:
            self.status.setText("Run a sweep first: then click a point of the "
                                "curve to see the images that break there.")
            return
        self.gallery.show_budget(self.gallery_source, eps)
