"""Results of an evaluation: one row per model, one column per number.

Cells fill in as the job's metrics arrive; after each one the column's best
value (highest accuracy) is re-marked in bold with a star and a green tint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
)

from explorer.core.analysis.custom_suite import (
    budget_text,
    custom_plan,
    plan_budgets,
    robust_key,
)
from explorer.core.analysis.suites import CUSTOM, suite_plan

BEST_TINT = QColor("#dff0d8")


def metric_columns(suite: str, eps: float, attacks: Sequence[str] = (),
                   budgets: Sequence[float] = ()) -> list[tuple[str, str]]:
    """(heading, metric name) for a suite: clean, each stage, the final numbers;
    for ``custom``: clean, the robust accuracy per budget, then each attack's
    own accuracy per budget."""
    cols = [("clean", "clean_acc")]
    if suite == CUSTOM:
        plan = custom_plan(attacks, budgets)
        cols += [(f"robust @{budget_text(e)}", robust_key(e))
                 for e in plan_budgets(plan)]
        return cols + [(s.label, s.label) for s in plan]
    for stages in suite_plan(suite, eps).values():
        cols += [(s.label, s.label) for s in stages]
    cols.append(("robust", "robust_acc"))
    if suite == "multi":
        cols += [("union", "union_acc"), ("average", "avg_acc")]
    return cols


class CompareTable(QTableWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.setToolTip("accuracy in % of the evaluated images; ★ marks the best "
                        "of each column; an attack's column is the robust "
                        "accuracy after that stage of the cascade (custom "
                        "suite: that attack alone; 'robust @eps' counts a "
                        "point only if it survives every attack there)")
        self.keys: list[str] = []
        self.values: dict[tuple[int, str], float] = {}

    def prepare(self, models: list[str], columns: list[tuple[str, str]]) -> None:
        self.clearContents()
        self.values = {}
        self.keys = [key for _, key in columns]
        self.setRowCount(len(models))
        self.setColumnCount(len(columns))
        self.setHorizontalHeaderLabels([heading for heading, _ in columns])
        self.setVerticalHeaderLabels(models)
        for row in range(len(models)):
            for col in range(len(columns)):
                item = QTableWidgetItem("…")
                item.setForeground(QBrush(QColor("#999")))
                self.setItem(row, col, item)

    def set_value(self, row: int, key: str, value: float) -> None:
        if key not in self.keys or not 0 <= row < self.rowCount():
            return
        self.values[(row, key)] = value
        self._mark(self.keys.index(key))

    def best_rows(self, key: str) -> set[int]:
        found = {r: v for (r, k), v in self.values.items()
                 if k == key and math.isfinite(v)}
        if not found:
            return set()
        top = max(found.values())
        return {r for r, v in found.items() if v >= top - 1e-12}

    def text(self, row: int, key: str) -> str:
        return self.item(row, self.keys.index(key)).text()

    def _mark(self, col: int) -> None:
        key = self.keys[col]
        best = self.best_rows(key) if self.rowCount() > 1 else set()
        for row in range(self.rowCount()):
            value = self.values.get((row, key))
            if value is None:
                continue
            item = self.item(row, col)
            text = f"{100 * value:.1f}%" if math.isfinite(value) else "–"
            item.setText(f"★ {text}" if row in best else text)
            font = QFont(item.font())
            font.setBold(row in best)
            item.setFont(font)
            item.setForeground(QBrush(QColor("#000")))
            item.setBackground(QBrush(BEST_TINT) if row in best else QBrush())
