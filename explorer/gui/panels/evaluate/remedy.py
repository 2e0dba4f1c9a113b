"""The masking doctor's remedies, beside the verdicts: re-run one model's
evaluation with the adaptive attack its warnings call for.

A model whose outputs change between calls gets "Re-run with EOT-K" (every
gradient stage averages K passes; K is 10, or twice the evaluation's own
EOT when that is already 10 or more); one whose gradients look shattered
gets "Re-run with BPDA" (identity backward through the modules marked
``non_differentiable``; :func:`~explorer.core.analysis.masking_verdicts.
remedies` decides which). The button starts the page's own evaluation job
on that model alone (same images, suite, budget and seed; no sweep, checks
or examples) and the row then shows both robust accuracies side by side.

Both work on the Evaluate page's "session model" row, the model as the Data &
Model page holds it: Mixup Inference there (randomized: EOT) and bit-depth
reduction (its rounding marked ``non_differentiable``: BPDA) re-run on a
copy, like the evaluation. A model file keeps no such mark (TorchScript
drops the attribute), so BPDA on it says what to evaluate instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QWidget

from explorer.core.analysis.compare import compare_dataset_job
from explorer.core.analysis.masking_verdicts import BPDA, EOT, remedies
from explorer.gui.context import AppContext

SLOT = "evaluate/remedy"
REMEDY_EOT = 10
BPDA_MODE = "identity"
WHY = {EOT: "outputs change between calls", BPDA: "gradients look shattered"}
ERROR = "#b00020"
UNMARKED = "no non-differentiable input transformation"  # core's ParamError
BPDA_HINT = ("; evaluate the model as the Data & Model page holds it (its model "
             "code or the bit-depth wrapper) from the \"session model\" row")


@dataclass(frozen=True)
class EvaluationPlan:
    """What the page's evaluation ran, in plain values (jobs never get
    widgets): model loaders by name, in table order, and ``compare_job``'s
    keywords."""

    loaders: Mapping[str, Callable[[], Any]]
    dataset: Any
    n: int
    suite: str
    eps: float
    options: Mapping[str, Any] = field(default_factory=dict)
    device: Any = None
    eot: int = 1  # the evaluation's own EOT passes
    config: Mapping[str, Any] = field(default_factory=dict)

    def remedy_options(self, remedy: str) -> dict[str, Any]:
        """The suite options of a re-run with ``remedy`` ("eot" or "bpda")."""
        suite_options = dict(self.options.get("suite_options", {}))
        if remedy == EOT:
            suite_options["eot"] = remedy_passes(self.eot)
        else:
            suite_options["bpda"] = BPDA_MODE
        return suite_options


def remedy_passes(evaluated: int) -> int:
    """EOT passes of the remedy: 10, or twice the evaluation's own from 10."""
    return REMEDY_EOT if evaluated < REMEDY_EOT else 2 * evaluated


def remedy_title(remedy: str, evaluated: int = 1) -> str:
    return f"EOT-{remedy_passes(evaluated)}" if remedy == EOT else "BPDA"


class RemedyRow:
    """One model's remedy: why, the button, and the two robust accuracies."""

    def __init__(self, grid: QGridLayout, line: int, name: str, remedy: str,
                 evaluated: int) -> None:
        self.name, self.remedy = name, remedy
        self.title = remedy_title(remedy, evaluated)
        self.before: float | None = None  # robust accuracy as evaluated
        self.after: float | None = None  # and with the remedy
        self.reason = QLabel(f"⚠ {name}: {WHY[remedy]}")
        self.button = QPushButton(f"Re-run with {self.title}")
        self.button.setEnabled(False)
        self.button.setToolTip(
            f"re-run this model's evaluation with every gradient attack averaging "
            f"{remedy_passes(evaluated)} forward passes (EOT)" if remedy == EOT else
            "re-run this model's evaluation with BPDA: gradients through its "
            "modules marked non_differentiable taken as the identity's")
        self.result = QLabel("robust accuracy: waiting for the evaluation")
        self.result.setWordWrap(True)
        self.result.setStyleSheet("font-size: 11px;")
        # two lines a model: why and the button, then the numbers below
        grid.addWidget(self.reason, 2 * line, 0)
        grid.addWidget(self.button, 2 * line, 1)
        grid.addWidget(self.result, 2 * line + 1, 0, 1, 2)
        self.as_evaluated = ("as evaluated" if evaluated == 1 else
                             f"as evaluated (EOT-{evaluated})")

    def widgets(self) -> tuple[QWidget, ...]:
        return self.reason, self.button, self.result

    def show(self, error: str | None = None) -> None:
        """Both numbers side by side, or why the re-run failed."""
        if error is not None:
            hint = BPDA_HINT if self.remedy == BPDA and UNMARKED in error else ""
            self.result.setText(f"{self.title} did not run: {error}{hint}")
            self.result.setStyleSheet(f"color: {ERROR}; font-size: 11px;")
            return
        text = f"robust accuracy {_pct(self.before)} {self.as_evaluated}"
        if self.after is not None:
            text += f"  →  <b>{_pct(self.after)}</b> with {self.title}"
        self.result.setText(text)
        self.result.setStyleSheet("font-size: 11px;")


def _pct(value: float | None) -> str:
    return "…" if value is None else f"{100 * value:.1f}%"


class RemedyBox(QWidget):
    """Rows of remedies under the verdicts; hidden while there are none. One
    re-run at a time (its own job slot)."""

    remedied = Signal(str, float)  # model name, robust accuracy with the remedy

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 4, 0, 0)
        self.grid.setColumnStretch(0, 1)
        self.plan: EvaluationPlan | None = None
        self.rows: dict[int, RemedyRow] = {}  # by the model's row in the table
        self.job = None
        self._before: dict[int, float] = {}
        self._running: int | None = None
        self.setVisible(False)

    def prepare(self, plan: EvaluationPlan) -> None:
        """A new evaluation: no rows until its verdicts come."""
        if self.job is not None and self.job.running:
            self.job.detach()  # a late result must not land on the new rows
            self.job.cancel()
        self.job, self._running, self.plan = None, None, plan
        for row in self.rows.values():
            for widget in row.widgets():
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.rows, self._before = {}, {}
        self.setVisible(False)

    def set_checks(self, model: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Model ``model``'s verdicts: a row when they call for a remedy."""
        if self.plan is None or model in self.rows:
            return
        failed = [str(k) for k, ok in zip(arrays["key"], arrays["passed"],
                                          strict=True) if not ok]
        found = remedies(failed)
        if not found:
            return
        row = RemedyRow(self.grid, len(self.rows), list(self.plan.loaders)[model],
                        found[0], self.plan.eot)
        row.button.clicked.connect(lambda: self.run(model))
        self.rows[model] = row
        self.setVisible(True)
        self._refresh(model)

    def set_robust(self, model: int, value: float) -> None:
        """The evaluation's robust accuracy of model ``model`` (the "before")."""
        self._before[model] = float(value)
        self._refresh(model)

    def _refresh(self, model: int) -> None:
        row = self.rows.get(model)
        if row is None:
            return
        row.before = self._before.get(model)
        row.button.setEnabled(row.before is not None and self._running is None)
        if row.before is not None:
            row.show()

    # -- the re-run ---------------------------------------------------------------
    def run(self, model: int) -> None:
        """Re-run model ``model``'s evaluation with its remedy, as a job."""
        plan, row = self.plan, self.rows.get(model)
        if plan is None or row is None or self._running is not None:
            return
        suite_options = plan.remedy_options(row.remedy)
        options = {k: v for k, v in plan.options.items()
                   if k in ("attacks", "budgets", "batch_size")}
        config = {**plan.config, "models": {row.name: plan.config.get(
            "models", {}).get(row.name, row.name)}, "remedy": row.remedy,
            **{k: v for k, v in suite_options.items() if k in (EOT, BPDA)}}
        title = f"{plan.suite} suite with {row.title}: {row.name}"
        self.job = self.ctx.runner.start(
            compare_dataset_job, name=title, slot=SLOT,
            job_args=({row.name: plan.loaders[row.name]}, plan.dataset, plan.n),
            recorder=self.ctx.run_recorder("eval", config, title=title),
            suite=plan.suite, eps=plan.eps, sweep_eps=[], checks=False, examples=0,
            suite_options=suite_options, config=config, device=plan.device,
            **options)
        self._running = model
        for other in self.rows.values():
            other.button.setEnabled(False)
        row.result.setText(f"re-running with {row.title}…")
        self.job.done.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.finished.connect(self._on_finished)

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        row = self.rows.get(self._running)
        if row is not None:
            row.after = float(results["models"][0]["robust_acc"])
            row.show()
            self.remedied.emit(row.name, row.after)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        row = self.rows.get(self._running)
        if row is not None:
            row.show(error=message)

    @Slot()
    def _on_finished(self) -> None:
        self._running = None
        for row in self.rows.values():
            row.button.setEnabled(row.before is not None)
