"""Earlier training runs of the workspace, and their robust accuracy overlaid.

The "best epoch" column says what chose each run's best checkpoint: the
validation split (and the figure, when a method chooses on one of its own,
e.g. union accuracy for the multi-norm methods), nothing (no split: the last
epoch), or, for runs from before the split existed, the test images. The
overlay draws validation robust accuracy, and test robust accuracy for runs
without validation figures (the legend says which)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.core.defenses.registry import figure_name
from explorer.gui.context import workspace_runs
from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend
from explorer.gui.widgets.training_curves import make_plot
from explorer.store import Workspace

COLUMNS = ("run", "defense", "status", "epochs", "test clean", "test robust",
           "best epoch")  # fmt: skip
MAX_COMPARE = 8
RESUMABLE = ("interrupted", "cancelled", "failed")


def _pct(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "–"


def _own_figure(results: dict) -> str | None:
    """The name of the figure that chose the best epoch when a method chose
    on one of its own (``union`` ...); None for validation robust accuracy."""
    metric = results.get("selected_metric")
    return None if metric in (None, "val_robust_acc") else figure_name(metric)


def best_cell(summary: dict) -> str:
    """The best epoch and what chose it, from a run's results."""
    epoch = summary.get("best_epoch")
    if not epoch:
        return "–"
    own = _own_figure(summary)
    chosen = {"validation": f"on validation {own}" if own else "on validation",
              "last": "last epoch, no split"}
    return f"{epoch} ({chosen.get(summary.get('selected_on'), 'on test, older run')})"


def best_text(results: dict) -> str:
    """One sentence on a finished run's best checkpoint: which epoch, what
    chose it, its validation and test robust accuracy (or the method's own
    figure that chose it: union accuracy for the multi-norm methods)."""
    epoch, test = results.get("best_epoch"), _pct(results.get("best_test_robust_acc"))
    own = _own_figure(results)
    if results.get("selected_on") == "validation" and own:
        return (f"best epoch {epoch}, chosen on validation {own} accuracy "
                f"({results.get('val_n')} held-out images): val {own} "
                f"{_pct(results.get('best_val_selected'))}, test {own} "
                f"{_pct(results.get('best_test_selected'))}, test robust {test}")
    if results.get("selected_on") == "validation":
        return (f"best epoch {epoch}, chosen on validation ({results.get('val_n')} "
                f"held-out images): val robust "
                f"{_pct(results.get('best_val_robust_acc'))}, test robust {test}")
    if results.get("selected_on") == "last":
        return (f"no validation split, so the best checkpoint is the last epoch "
                f"({epoch}): test robust {test}")
    return f"robust accuracy {_pct(results.get('robust_acc'))}"


class RunList(QWidget):
    """A table of ``train`` runs (newest first); selecting rows overlays their
    validation (else test) robust accuracy per epoch in the plot below."""

    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(
            QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.view = pg.GraphicsLayoutWidget()
        self.plot = make_plot(self.view, "Robust accuracy of the selected runs "
                              "(validation; test for runs without a split)",
                              "robust accuracy (%)")
        self.plot.setYRange(0, 100, padding=0.02)
        self.plot.setXRange(0, 10, padding=0.02)
        self.legend = OutsideLegend(self.plot)
        self.curves = [self.plot.plot(pen=pg.mkPen(CLASS_COLORS[i], width=2),
                                      symbol="o", symbolSize=4,
                                      symbolBrush=CLASS_COLORS[i])
                       for i in range(MAX_COMPARE)]
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.table, 2)
        column.addWidget(self.view, 3)
        self._ids: list[str] = []
        self._statuses: dict[str, str] = {}
        self._ws: Workspace | None = None

    def refresh(self, ws: Workspace | None) -> None:
        """Reload the table from the workspace, keeping the selection."""
        self._ws = ws
        chosen = set(self.selected())
        records = workspace_runs(ws, "train")
        self.table.blockSignals(True)
        self.table.setRowCount(len(records))
        self._ids = [r.id for r in records]
        self._statuses = {r.id: r.status for r in records}
        for row, record in enumerate(records):
            summary = record.summary or {}
            last = self._last_epoch(record.id) if not summary else {}
            cells = (record.id, str(record.config.get("defense", "?")), record.status,
                     str(summary.get("epochs", last.get("epoch", "–"))),
                     _pct(summary.get("clean_acc", last.get("test_clean_acc"))),
                     _pct(summary.get("robust_acc", last.get("test_robust_acc"))),
                     best_cell(summary))
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
            if record.id in chosen:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self._on_selection()

    def _last_epoch(self, run_id: str) -> dict[str, float]:
        series = self._ws.metrics(run_id) if self._ws is not None else {}
        out: dict[str, float] = {}
        for name in ("test_clean_acc", "test_robust_acc"):
            if series.get(name):
                out["epoch"], out[name] = series[name][-1]
        return out

    def ids(self) -> list[str]:
        return list(self._ids)

    def status(self, run_id: str) -> str:
        return self._statuses.get(run_id, "")

    def selected(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self._ids[r] for r in rows if r < len(self._ids)]

    def select(self, run_ids: list[str]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for run_id in run_ids:
            if run_id in self._ids:
                self.table.selectRow(self._ids.index(run_id))
        self.table.setSelectionMode(mode)

    def drawn(self) -> int:
        """How many comparison curves show data."""
        return sum(1 for c in self.curves if c.xData is not None and len(c.xData))

    @Slot()
    def _on_selection(self) -> None:
        self.legend.clear()
        chosen = self.selected()[:MAX_COMPARE]
        top = 1
        for i, curve in enumerate(self.curves):
            points, part = [], "val"
            if i < len(chosen) and self._ws is not None:
                series = self._ws.metrics(chosen[i])
                points = series.get("val_robust_acc", [])
                if not points:
                    points, part = series.get("test_robust_acc", []), "test"
            curve.setData([p[0] for p in points], [100 * p[1] for p in points])
            if points:
                self.legend.addItem(curve, f"{chosen[i]} ({part})")
                top = max(top, points[-1][0])
        self.plot.setXRange(0, top, padding=0.02)
        self.selection_changed.emit()
