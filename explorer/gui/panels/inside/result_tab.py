"""What the Look Inside tabs share: job controls, export of plots and data.

A tab holds a small form, the shared job controls (with Export…) and a view. A view
keeps its current result (the arrays of one analysis job or a reloaded
``.npz``), draws it, and says what its data are as a table for CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QRectF, Signal, Slot
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.core.analysis.result_files import save_npz
from explorer.core.fileio import atomic_save
from explorer.gui.widgets.job_controls import JobControls

EXPORT_FILTER = "PNG image (*.png);;SVG image (*.svg)"
CSV_DIGITS = 6


class ResultView(Protocol):
    result: dict[str, Any] | None

    def show_result(self, result: dict[str, Any]) -> None: ...

    def csv_table(self) -> tuple[list[str], list[Sequence[Any]]]: ...

    def export_target(self) -> Any: ...


class LegendSceneView:
    """What the views with one legend share (mixed into a pyqtgraph widget
    before its Qt class): the legend's names and the scene to export."""

    legend: Any

    def legend_names(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    def export_target(self) -> Any:
        return self.scene()  # type: ignore[attr-defined]


def export_plot(target: Any, path: str | Path) -> Path:
    """Save a pyqtgraph scene as PNG or SVG (by the file's suffix)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        exporter = pg.exporters.ImageExporter(target)
        exporter.parameters()["antialias"] = True
    elif suffix == ".svg":
        path.parent.mkdir(parents=True, exist_ok=True)
        _render_svg(target, path)
        return path
    else:
        raise ValueError(f"{path}: plots are exported as .png or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter.export(str(path))
    if not path.is_file():
        raise OSError(f"{path}: the plot could not be written")
    return path


def _render_svg(scene: Any, path: Path) -> None:
    """Vector output through Qt's own SVG painter. pyqtgraph 0.14's
    SVGExporter cannot parse the closed paths ("... Z") that Qt 6.11 writes
    and raises on every plot, so it is not used."""
    views = scene.views()
    # The view's rect is what is on screen; the scene's own grows with items.
    source = views[0].sceneRect() if views else scene.sceneRect()
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(source.size().toSize())
    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
    generator.setTitle("Robustness Explorer plot")
    painter = QPainter(generator)
    try:
        scene.render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()


def write_csv(path: str | Path, header: Sequence[str],
              rows: Sequence[Sequence[Any]]) -> Path:
    """A plain CSV with a header row, written atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    data = text.getvalue().encode()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_save(Path(path), write)


def _cell(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return f"{float(value):.{CSV_DIGITS}g}"
    if isinstance(value, np.generic):
        return value.item()
    return value


def export_all(view: ResultView, path: str | Path) -> list[Path]:
    """The plot at ``path`` (.png/.svg), its data beside it as .csv and .npz."""
    if view.result is None:
        raise ValueError("Nothing to export yet: compute or open a result first.")
    path = Path(path)
    plot = export_plot(view.export_target(), path)
    header, rows = view.csv_table()
    table = write_csv(path.with_suffix(".csv"), header, rows)
    arrays = save_npz(path.with_suffix(".npz"), view.result)
    return [plot, table, arrays]


class ResultControls(JobControls):
    """The shared job controls plus Export… of the tab's plot and data."""

    def __init__(self, run_text: str, view: ResultView, parent=None) -> None:
        super().__init__(run_text, parent)
        self.view = view
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the plot as PNG or SVG; its data go "
                                      "beside it as .csv and .npz")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.choose_export)
        self.add_button(self.export_button)

    def shown(self, text: str) -> None:
        """A result is on screen (computed or reloaded)."""
        self.export_button.setEnabled(True)
        self.status.setText(text)

    @Slot()
    def choose_export(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export plot and data", "",
                                                   EXPORT_FILTER)
        if not path:
            return
        if not Path(path).suffix:
            path += ".svg" if "svg" in chosen.lower() else ".png"
        self.export(path)

    def export(self, path: str | Path) -> list[Path]:
        """Export the view's plot and data; errors go to the status line."""
        try:
            files = export_all(self.view, path)
        except (OSError, ValueError) as exc:
            self.status.setText(f"Export failed: {exc}")
            return []
        self.status.setText("Exported " + ", ".join(f.name for f in files) +
                            f" to {files[0].parent}")
        return files


class ResultTab(QWidget):
    """A form and the job controls above a view; follows one job at a time."""

    result_shown = Signal()

    def __init__(self, form: QWidget, view: ResultView, run_text: str,
                 parent=None) -> None:
        super().__init__(parent)
        self.form, self.view = form, view
        self.controls = ResultControls(run_text, view)
        self.meta: dict[str, Any] = {}
        form.setMaximumWidth(430)
        top = QHBoxLayout()
        top.addWidget(form, 0)
        top.addWidget(self.controls, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addLayout(top)
        box.addWidget(view, 1)  # type: ignore[arg-type]

    def follow(self, job, meta: dict[str, Any], text: str) -> None:
        """Show what ``job`` sends: its result arrays, the file, the summary."""
        self.meta = meta
        job.snapshot.connect(self._on_snapshot)
        job.done.connect(self._on_done)
        self.controls.follow(job, text)

    @Slot(object)
    def _on_snapshot(self, event) -> None:
        if event.label == "result":
            self.show_result({**event.arrays, "meta": self.meta}, "Computed.")

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        seconds = results.get("seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
        path = Path(results["path"]) if results.get("path") else None
        saved = f"; saved as {path.name} in run {path.parent.name}" if path else ""
        self.controls.status.setText(f"Done{took}{saved}.")

    def show_result(self, result: dict[str, Any], text: str) -> None:
        self.view.show_result(result)
        self.controls.shown(text)
        self.result_shown.emit()
