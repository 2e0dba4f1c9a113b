"""The Evaluate page's Trade-off tab: clean accuracy (x) against robust
accuracy (y) of the models of the last evaluation, each point labelled with
the model's name and its training time, and the Pareto frontier (the models
no other beats on both axes) drawn when asked.

Training times are read, never estimated (:mod:`explorer.core.analysis.
tradeoff`): the model's metadata, else its training run's record in the
workspace; "unknown" otherwise. The models are loaded for their metadata in
a small background job, so the labels say "…" for a moment after each
evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

from explorer.core.analysis.custom_suite import budget_text
from explorer.core.analysis.tradeoff import (
    pareto_front,
    time_text,
    training_seconds,
    training_times_job,
)
from explorer.gui.context import AppContext
from explorer.gui.panels.evaluate.compare_views import MAX_MODELS
from explorer.gui.panels.evaluate.model_checklist import ModelChecklist
from explorer.gui.widgets.plots import CLASS_COLORS

SLOT = "evaluate/training-times"
PENDING = "…"


class TradeoffView(QWidget):
    """A scatter built once (points, labels, frontier) and updated in place."""

    def __init__(self, ctx: AppContext, models: ModelChecklist,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.models = ctx, models
        self.plot = pg.PlotWidget()
        item = self.plot.getPlotItem()
        item.setTitle("Clean vs robust accuracy")
        item.setLabel("bottom", "clean accuracy (%)")
        item.setLabel("left", "robust accuracy (%)")
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setMenuEnabled(False)
        item.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.frontier = item.plot(pen=pg.mkPen("#888", width=1.5,
                                               style=Qt.PenStyle.DashLine))
        self.points = pg.ScatterPlotItem(size=11, pen=pg.mkPen("k", width=0.5))
        item.addItem(self.points)
        self.labels = []
        for i in range(MAX_MODELS):
            text = pg.TextItem(color=CLASS_COLORS[i], anchor=(0, 1))
            text.setVisible(False)
            item.addItem(text)
            self.labels.append(text)
        self.show_front = QCheckBox("Pareto frontier (no other model better on both)")
        self.show_front.setChecked(True)
        self.show_front.toggled.connect(self._draw_front)
        self.note = QLabel("Run an evaluation: each compared model appears here "
                           "with its training time.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #444; font-size: 11px;")
        box = QVBoxLayout(self)
        box.addWidget(self.plot, 1)
        box.addWidget(self.show_front)
        box.addWidget(self.note)
        self.names: list[str] = []
        self.xy = np.zeros((0, 2))
        self.seconds: dict[str, float | None] = {}
        self.front: list[int] = []  # indices of the drawn frontier's points
        self.x_range = (0.0, 100.0)

    # -- results ---------------------------------------------------------------------
    @Slot(dict)
    def show_results(self, results: dict) -> None:
        """The models of a compare job's results; then their training times."""
        entries = [m for m in results.get("models", [])
                   if m.get("robust_acc") is not None][:MAX_MODELS]
        self.names = [m["model"] for m in entries]
        self.xy = np.array([[100 * m["clean_acc"], 100 * m["robust_acc"]]
                            for m in entries]).reshape(-1, 2)
        self.seconds = {}
        suite, eps = results.get("suite", ""), results.get("eps")
        at = f" at eps {budget_text(eps)}" if isinstance(eps, float) else ""
        self.plot.getPlotItem().setLabel("left", f"robust accuracy (%), {suite} "
                                                 f"suite{at}")
        self.points.setData(x=self.xy[:, 0], y=self.xy[:, 1],
                            brush=[pg.mkBrush(CLASS_COLORS[i])
                                   for i in range(len(self.names))])
        self._draw_front()
        if len(self.xy):
            (x0, y0), (x1, y1) = self.xy.min(0), self.xy.max(0)
            self.x_range = (max(0.0, x0 - 12), min(100.0, x1 + 4))
            self.plot.getPlotItem().setRange(
                xRange=self.x_range, yRange=(max(0.0, y0 - 8), min(100.0, y1 + 10)),
                padding=0.05)
        self._label()
        self.note.setText(f"{len(self.names)} models of the last evaluation on "
                          f"{results.get('n', '?')} images; training time from "
                          "the model's metadata or its training run, 'unknown' "
                          "when neither records it.")
        self._look_up_times()

    def _look_up_times(self) -> None:
        by_name = {c.name: c for c in self.models.choices()}
        found = [by_name[n] for n in self.names if n in by_name]
        self.seconds = {n: None for n in self.names if n not in by_name}
        if not found:
            self._label()
            return
        handle = self.ctx.runner.start(
            training_times_job, name="training times", slot=SLOT, background=True,
            job_args=({c.name: c.loader() for c in found}, self._run_seconds(found)))
        handle.done.connect(self._on_times)
        handle.failed.connect(self._on_failed)

    def _run_seconds(self, choices) -> dict[str, float | None]:
        """Training runs' recorded times (their summary's ``seconds``)."""
        ws = self.ctx.workspace
        runs = [c for c in choices if c.kind == "run"]
        if ws is None or not runs:
            return {}
        records = {Path(ws.run_dir(r.id)): r for r in ws.runs(kind="train")}
        return {c.name: training_seconds(records[Path(c.source).parent].summary)
                for c in runs if Path(c.source).parent in records}

    @Slot(dict)
    def _on_times(self, results: dict) -> None:
        self.seconds.update(results.get("seconds", {}))
        self._label()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.seconds.update({n: None for n in self.names if n not in self.seconds})
        self._label()
        self.note.setText(f"Training times could not be read: {message}")

    # -- drawing ---------------------------------------------------------------------
    def label_text(self, i: int) -> str:
        name = self.names[i]
        when = (time_text(self.seconds[name]) if name in self.seconds else PENDING)
        return f"{name}\ntraining time: {when}"

    def _label(self) -> None:
        for i, text in enumerate(self.labels):
            shown = i < len(self.names)
            text.setVisible(shown)
            if shown:
                text.setText(self.label_text(i))
                text.setPos(*self.xy[i])
                # left of the point in the right half, so it stays in view
                right = self.xy[i, 0] > sum(self.x_range) / 2
                text.setAnchor((1.0, 1.0) if right else (0.0, 1.0))

    @Slot()
    def _draw_front(self) -> None:
        front = pareto_front([tuple(p) for p in self.xy]) \
            if self.show_front.isChecked() else []
        self.front = front if len(front) > 1 else []
        self.frontier.setData(self.xy[self.front, 0], self.xy[self.front, 1])

    def shown_points(self) -> list[tuple[str, float, float, str]]:
        """(name, x, y, label) per point, as drawn."""
        xs, ys = self.points.getData()
        return [(n, float(x), float(y), self.labels[i].toPlainText())
                for i, (n, x, y) in enumerate(zip(self.names, xs, ys, strict=True))]

    def front_names(self) -> list[str]:
        """The models the drawn frontier joins, by ascending clean accuracy."""
        return [self.names[i] for i in self.front]
