"""The Evaluate page's Transfer tab: how adversarial examples crafted on one
model fare against the others.

Its own button starts ``transfer_dataset_job`` (through the runner, with
progress and cancel) on the checked models, at the Evaluation box's eps and
image count; the heat map fills in one row per source model as the job goes:
rows are the model the examples were crafted on, columns the model evaluated
on, each cell that model's accuracy (%) on them. The diagonal is white-box;
the last row is each model's clean accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Slot
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core.analysis.custom_suite import budget_text, eps_attacks
from explorer.core.analysis.transfer import (
    DEFAULT_ATTACK,
    DEFAULT_STEPS,
    transfer_attack,
    transfer_dataset_job,
)
from explorer.core.jobs import Snapshot
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.panels.evaluate.compare_views import MAX_MODELS
from explorer.gui.panels.evaluate.model_checklist import ModelChecklist
from explorer.gui.panels.evaluate.settings_box import EvalSettings
from explorer.gui.widgets.job_controls import FollowsJob, JobControls
from explorer.gui.widgets.plots import HeatMap

SLOT = "evaluate/transfer"
CLEAN_ROW = "clean (no attack)"


def _short(name: str, width: int = 20) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


class _PercentCells(pg.GraphicsObject):
    """Every cell's accuracy in percent ("…" while its row is pending),
    painted in one pass; the texts are kept for reading back."""

    def __init__(self) -> None:
        super().__init__()
        self.m = np.zeros((0, 0))
        self.texts: dict[tuple[int, int], str] = {}

    def set_cells(self, m: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.m = m
        self.texts = {(r, c): "…" if np.isnan(v) else f"{100 * v:.1f}"
                      for (r, c), v in np.ndenumerate(m)}
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.m.shape[1], self.m.shape[0])

    def paint(self, painter: QPainter, *_args) -> None:
        transform = painter.transform()
        painter.resetTransform()  # device pixels: the text keeps its size
        for (r, c), text in self.texts.items():
            value = self.m[r, c]
            box = transform.mapRect(QRectF(c, r, 1, 1))
            painter.setPen(QColor("black" if value > 0.6 else "white"))
            font = QFont(painter.font())
            font.setBold(r == c)  # white-box
            painter.setFont(font)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.setTransform(transform)


class TransferHeatMap(HeatMap):
    """Rows crafted on (then the clean row), columns evaluated on."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Accuracy (%) on adversarial examples", "evaluated on",
                         "crafted on", parent)
        self.plot.setAspectLocked(False)
        self.plot.removeItem(self.labels)
        self.labels = _PercentCells()
        self.plot.addItem(self.labels)
        self.names: list[str] = []
        self.ticks: dict[str, list[str]] = {"left": [], "bottom": []}  # as shown

    def prepare(self, names: Sequence[str]) -> None:
        """An empty (pending) matrix for ``names``."""
        self.names = list(names)
        k = len(self.names)
        self.matrix = np.full((k + 1, k), np.nan)
        rows = [*self.names, CLEAN_ROW]
        for side, labels in (("left", rows), ("bottom", self.names)):
            self.ticks[side] = [_short(n) for n in labels]
            self.plot.getAxis(side).setTicks(
                [[(i + 0.5, t) for i, t in enumerate(self.ticks[side])]])
        self._show()
        self.plot.setRange(xRange=(0, max(k, 1)), yRange=(0, k + 1), padding=0)

    def set_row(self, i: int, values: Sequence[float]) -> None:
        self.matrix[i, :] = np.asarray(values, dtype=float)[:self.matrix.shape[1]]
        self._show()

    def set_clean(self, values: Sequence[float]) -> None:
        self.set_row(len(self.names), values)

    def _show(self) -> None:
        self.image.setImage(np.nan_to_num(self.matrix, nan=0.0), autoLevels=False,
                            levels=(0, 1))
        self.labels.set_cells(self.matrix)

    def cell_text(self, row: int, col: int) -> str:
        return self.labels.texts.get((row, col), "")


class TransferTab(QWidget, FollowsJob):
    """Attack and steps, a button with progress and cancel, the heat map."""

    def __init__(self, ctx: AppContext, models: ModelChecklist,
                 settings: EvalSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.models, self.settings = ctx, models, settings
        self.results: dict[str, Any] | None = None
        self.attack = QComboBox()
        for name in eps_attacks():
            self.attack.addItem(name, name)
        self.attack.setCurrentIndex(self.attack.findData(DEFAULT_ATTACK))
        self.attack.setToolTip("the attack that crafts the examples on each model "
                               "(any attack with an eps budget)")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(DEFAULT_STEPS)
        self.steps.setToolTip("iterations of an iterative attack")
        self.controls = JobControls("Compute transfer matrix", compact=True)
        self.controls.run_requested.connect(self.run)
        self.run_button = self.controls.run_button
        self.status = self.controls.status
        self.note = QLabel("Examples are crafted on each checked model (rows) at the "
                           "Evaluation box's eps, on its first images; each cell is "
                           "a model's accuracy on them (columns). The diagonal is "
                           "white-box; the last row is clean accuracy.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444; font-size: 11px;")
        self.heat = TransferHeatMap()
        form = QFormLayout()
        form.addRow("Attack", self.attack)
        form.addRow("Steps", self.steps)
        top = QHBoxLayout()
        top.addLayout(form)
        top.addWidget(self.controls, 1)
        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addWidget(self.note)
        box.addWidget(self.heat, 1)

    def problem(self) -> str | None:
        s = self.ctx.session
        if s.dataset is None:
            return "Choose a data set on the Data & Model page."
        if len(tuple(getattr(s.dataset.info, "shape", ()))) != 3:
            return (f"'{s.data_name}' is a 2-D toy set; the transfer matrix attacks "
                    "images. Choose an image data set on the Data & Model page.")
        checked = self.models.checked()
        if len(checked) < 2:
            return (f"Check at least 2 models: a transfer matrix needs at least 2 "
                    f"(checked: {len(checked)}).")
        if len(checked) > MAX_MODELS:
            return f"Compare at most {MAX_MODELS} models at once."
        return self.settings.problem()

    @Slot()
    def run(self) -> None:
        if (problem := self.problem()) is not None:
            self.controls.say(problem, error=True)
            return
        s, values = self.ctx.session, self.settings.job_settings()
        attack, eps, steps = str(self.attack.currentData()), values["eps"], \
            self.steps.value()
        try:
            transfer_attack(attack, eps, steps)
        except ParamError as exc:
            self.controls.say(str(exc), error=True)
            return
        chosen = self.models.checked()
        names = [c.name for c in chosen]
        config = {"transfer": True, "models": {c.name: c.source for c in chosen},
                  "data": s.data_name, "split": s.split, "n": values["n"],
                  "attack": attack, "eps": eps, "steps": steps,
                  "device": str(s.device)}
        title = f"transfer ({attack}): {', '.join(names)}"
        recorder = self.ctx.run_recorder("eval", config, title=title)
        self.results = None
        self.heat.prepare(names)
        handle = self.ctx.runner.start(
            transfer_dataset_job, name="transfer matrix", slot=SLOT,
            job_args=({c.name: c.loader() for c in chosen}, s.dataset, values["n"]),
            recorder=recorder, attack=attack, eps=eps, steps=steps, config=config,
            device=s.device)
        self.controls.follow(handle, f"{attack} at eps {budget_text(eps)} on "
                                     f"{values['n']} images, {len(names)} models…",
                             snapshot=self._on_snapshot, done=self._on_done)

    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        if event.label == "clean":
            self.heat.set_clean(event.arrays["clean_acc"])
        elif event.label == "transfer":
            self.heat.set_row(event.step, event.arrays["row"])

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self.results = results
        self.controls.say(f"done in {results.get('seconds', 0.0):.1f} s — rows: "
                          "crafted on, columns: evaluated on.")
