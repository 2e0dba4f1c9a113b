"""Loss landscapes: a 1-D curve of loss and accuracy, or a 2-D heat map with
contour lines, in weight space (filter-normalised directions, or the path to
another checkpoint) or in input space around one image.

A heat map whose two axes share a unit (input space: l-inf pixels; weight
space: filter-normalised directions) keeps a square view box at one scale and
shows exactly the computed grid; only the path to another checkpoint, whose α
is no distance, stretches to the box."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QWidget,
)

from explorer.gui.panels.inside.square_fit import SquareMapsWidget, map_bounds

CONTOURS = 8
MODEL_FILTER = "Models (*.safetensors *.pt *.pth *.ts);;All files (*)"
KIND_WORDS = {"grad": "gradient sign", "adv": "adversarial", "random": "random signs"}
WEIGHT_AXIS = "filter-normalised direction {} (units of the weights' norms)"
PATH_AXIS = "α: 0 = this model, 1 = the other checkpoint"


def log_loss(loss: np.ndarray) -> np.ndarray:
    """log10 of the loss: landscapes span orders of magnitude."""
    return np.log10(np.maximum(np.asarray(loss, float), 1e-8))


class LandscapeView(QStackedWidget):
    """Page 0: loss and accuracy curves; page 1: a heat map with contours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: dict[str, Any] | None = None
        self.curves = pg.GraphicsLayoutWidget()
        self.loss_plot = self.curves.addPlot(row=0, col=0)
        self.loss_plot.setLabel("left", "cross-entropy loss")
        self.acc_plot = self.curves.addPlot(row=1, col=0)
        self.acc_plot.setLabel("left", "accuracy (%)")
        self.acc_plot.setXLink(self.loss_plot)
        for plot in (self.loss_plot, self.acc_plot):
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.hideButtons()
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#1f77b4", width=2),
                                              symbol="o", symbolSize=5)
        self.acc_curve = self.acc_plot.plot(pen=pg.mkPen("#2ca02c", width=2),
                                            symbol="o", symbolSize=5)
        self.map = SquareMapsWidget()
        self.map_plot = self.map.addPlot(row=0, col=0)
        self.map_plot.setAspectLocked(False)
        self.map_plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.map_plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0, 1), interactive=False,
                                        colorMap=pg.colormap.get("viridis"),
                                        label="log₁₀ loss")
        self.colorbar.setImageItem(self.image, insert_in=self.map_plot)
        self.contours = [pg.IsocurveItem(level=0, pen=pg.mkPen("w", width=1),
                                         axisOrder="row-major")
                         for _ in range(CONTOURS)]
        self.boundary = pg.IsocurveItem(level=0.5, axisOrder="row-major",
                                        pen=pg.mkPen("#d62728", width=2))
        for iso in (*self.contours, self.boundary):
            iso.setParentItem(self.image)
        self.centre = pg.ScatterPlotItem(symbol="o", size=10, brush="w",
                                         pen=pg.mkPen("k", width=2))
        self.ball = pg.PlotCurveItem(pen=pg.mkPen("w", width=2,
                                                  style=Qt.PenStyle.DashLine))
        self.map_plot.addItem(self.ball)
        self.map_plot.addItem(self.centre)
        self.addWidget(self.curves)
        self.addWidget(self.map)

    def show_result(self, result: dict[str, Any]) -> None:
        self.result = result
        meta = result.get("meta") or {}
        coords = np.asarray(result["coords"], float)
        if result["kind"] == "weights-1d":
            self._show_curves(result, coords, meta)
        else:
            self._show_map(result, coords, meta)

    def _x_label(self, result: dict[str, Any], i: int) -> str:
        if result["kind"] == "input":
            kinds = [str(k) for k in np.atleast_1d(result.get("direction_kinds", []))]
            word = KIND_WORDS.get(kinds[i], kinds[i]) if i < len(kinds) else "?"
            return f"direction {i + 1}: {word} (l-inf pixels)"
        if i == 0 and bool(result.get("interpolated", False)):
            return PATH_AXIS
        return WEIGHT_AXIS.format(i + 1)

    def _show_curves(self, r: dict[str, Any], coords: np.ndarray, meta) -> None:
        self.setCurrentIndex(0)
        self.loss_curve.setData(coords, np.asarray(r["loss"], float))
        self.acc_curve.setData(coords, 100 * np.asarray(r["acc"], float))
        n = int(r.get("n_images", meta.get("n", 0)))
        self.loss_plot.setTitle(f"weight space: {meta.get('model', 'model')}, "
                                f"loss on {n} images", size="10pt")
        self.acc_plot.setLabel("bottom", self._x_label(r, 0))
        self.loss_plot.autoRange()
        self.acc_plot.setYRange(0, 100)

    def _show_map(self, r: dict[str, Any], coords: np.ndarray, meta) -> None:
        self.setCurrentIndex(1)
        ys = np.asarray(r["coords_y"], float)
        surface = log_loss(r["loss"])
        lo, hi = float(surface.min()), float(surface.max())
        hi = hi if hi > lo else lo + 1e-6
        self.image.setImage(surface, autoLevels=False, levels=(lo, hi))
        self.colorbar.setLevels((lo, hi))
        dx = coords[1] - coords[0] if len(coords) > 1 else 1.0
        dy = ys[1] - ys[0] if len(ys) > 1 else 1.0
        rect = QRectF(coords[0] - dx / 2, ys[0] - dy / 2,
                      coords[-1] - coords[0] + dx, ys[-1] - ys[0] + dy)
        self.image.setRect(rect)
        # Contours: evenly spaced in log loss, strictly inside the range.
        for iso, level in zip(self.contours, np.linspace(lo, hi, CONTOURS + 2)[1:-1],
                              strict=True):
            iso.setData(surface, level)
        if r["kind"] == "input":
            wrong = (np.asarray(r["pred"]) != int(r["label"])).astype(float)
            self.boundary.setData(wrong if wrong.any() else None, 0.5)
            eps = float(r.get("eps", 0))
            square = np.array([[-eps, -eps], [eps, -eps], [eps, eps], [-eps, eps],
                               [-eps, -eps]])
            self.ball.setData(square[:, 0], square[:, 1])
            marks = np.vstack([[[0.0, 0.0]], square])  # centre and eps square
            # Two lines: one would make the plot wider than its square needs.
            title = (f"input space: {meta.get('model', 'model')} around the image"
                     "<br><span style='font-size:9pt'>red: the prediction changes; "
                     f"dashed: eps {eps:.3g}</span>")
        else:
            self.boundary.setData(None, 0.5)
            self.ball.setData([], [])
            marks = np.zeros((1, 2))  # the centre: the model itself
            n = int(r.get("n_images", meta.get("n", 0)))
            title = f"weight space: {meta.get('model', 'model')}, loss on {n} images"
        self.centre.setData([0.0], [0.0])
        self.map_plot.setTitle(title, size="10pt")
        self.map_plot.setLabel("bottom", self._x_label(r, 0))
        self.map_plot.setLabel("left", self._x_label(r, 1))
        same_unit = not bool(r.get("interpolated", False))
        self.map_plot.setAspectLocked(same_unit)
        self.map.set_square([self.map_plot] if same_unit else [])
        self.map_plot.setRange(map_bounds(rect, marks), padding=0)

    def export_target(self):
        return self.currentWidget().scene()

    def csv_table(self) -> tuple[list[str], list[Sequence[Any]]]:
        r = self.result or {}
        coords = np.asarray(r.get("coords", []), float)
        if r.get("kind") == "weights-1d":
            return ["direction_1", "loss", "accuracy"], [
                (a, float(loss), float(acc)) for a, loss, acc in
                zip(coords, r["loss"], r["acc"], strict=True)]
        extra = "accuracy" if "acc" in r else "predicted_class"
        other = np.asarray(r.get("acc", r.get("pred", [])))
        ys = np.asarray(r.get("coords_y", []), float)
        rows = [(coords[j], ys[i], float(value), other[i, j].item())
                for (i, j), value in np.ndenumerate(np.asarray(r.get("loss", [])))]
        return ["direction_1", "direction_2", "loss", extra], rows


class LandscapeForm(QWidget):
    """Space, dimensions, grid, span, images, eps and the other checkpoint."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.space = QComboBox()
        self.space.addItem("weights (over the first N images)", "weights")
        self.space.addItem("input (around the chosen image)", "input")
        self.dims = QComboBox()
        self.dims.addItem("2-D heat map", 2)
        self.dims.addItem("1-D curve", 1)
        self.grid = QSpinBox()
        self.grid.setRange(3, 201)
        self.grid.setValue(21)
        self.span = QDoubleSpinBox()
        self.span.setDecimals(3)
        self.span.setRange(0.001, 10.0)
        self.span.setValue(1.0)
        self.span.setToolTip("half-width of the plotted range (input space: in "
                             "pixels, e.g. 2 × eps)")
        self.n = QSpinBox()
        self.n.setRange(1, 100_000)
        self.n.setValue(200)
        self.eps = QDoubleSpinBox()
        self.eps.setDecimals(4)
        self.eps.setRange(0.001, 1.0)
        self.eps.setValue(0.1)
        self.between = QCheckBox("between this model and another checkpoint")
        self.other = QLineEdit()
        self.other.setPlaceholderText("weights file of the same architecture")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self.choose_other)
        other_row = QHBoxLayout()
        other_row.addWidget(self.other, 1)
        other_row.addWidget(self.browse)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("space", self.space)
        form.addRow("shape", self.dims)
        form.addRow("grid / span", _pair(self.grid, self.span))
        form.addRow("images N / eps", _pair(self.n, self.eps))
        form.addRow(self.between)
        form.addRow("checkpoint", other_row)
        self.space.currentIndexChanged.connect(self._on_space)
        self.between.toggled.connect(self._update)
        self._update()

    @Slot()
    def _on_space(self) -> None:
        # Sensible ranges differ by orders of magnitude between the spaces.
        weights = self.space.currentData() == "weights"
        self.span.setValue(1.0 if weights else 2 * self.eps.value())
        self._update()

    @Slot()
    def _update(self) -> None:
        weights = self.space.currentData() == "weights"
        self.dims.setEnabled(weights)
        self.n.setEnabled(weights)
        self.eps.setEnabled(not weights)
        self.between.setEnabled(weights)
        for w in (self.other, self.browse):
            w.setEnabled(weights and self.between.isChecked())
        self.changed.emit()

    @Slot()
    def choose_other(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Other checkpoint", "",
                                              MODEL_FILTER)
        if path:
            self.other.setText(path)
            self.between.setChecked(True)

    def values(self) -> dict[str, Any]:
        weights = self.space.currentData() == "weights"
        out: dict[str, Any] = {"space": self.space.currentData(),
                               "grid": self.grid.value(),
                               "span": round(self.span.value(), 6)}
        if weights:
            out.update(dims=self.dims.currentData(), n=self.n.value(),
                       other=self.other.text().strip()
                       if self.between.isChecked() else "")
        else:
            out.update(eps=round(self.eps.value(), 6))
        return out


def _pair(a: QWidget, b: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(a)
    row.addWidget(b)
    return row
