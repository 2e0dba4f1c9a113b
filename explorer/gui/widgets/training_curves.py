"""Live curves of a training run: loss, accuracy and learning rate.

Every curve is made once in ``__init__`` and updated with ``setData``; the
x range is the planned epochs, so it never jumps while a run grows. The
accuracy plot shows validation (solid) and test (dashed) figures apart, and
a star on the validation robust curve marks the best epoch: the first one of
highest validation robust accuracy, the trainer's rule for its best
checkpoint. A run without a validation split draws no star (its best
checkpoint is simply the last epoch).

A method that reports figures of its own (``Defense.extra_scores``: per-norm
accuracy of the multi-norm methods, per-member accuracy of an ensemble)
gets them in the *Method figures* plot beside the learning rate: every epoch
metric ``val_KEY`` / ``test_KEY`` ending in ``_acc`` that is not one of the
figures above becomes a curve there (validation solid, test dashed), made
when its first point arrives. When the run selects its best epoch on such a
figure (``reset(selection=...)``), the star sits on that curve instead.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from explorer.core.training.figures import method_figure
from explorer.gui.widgets.copy_image import add_copy_action
from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend

EPOCH_KEYS = ("train_loss", "train_acc", "val_clean_acc", "val_robust_acc",
              "test_clean_acc", "test_robust_acc", "lr")  # fmt: skip
# key, legend label, colour index, dashed (test figures are dashed)
ACC_CURVES = (("train_acc", "train", 1, False),
              ("val_clean_acc", "val clean", 2, False),
              ("val_robust_acc", "val robust", 3, False),
              ("test_clean_acc", "test clean", 2, True),
              ("test_robust_acc", "test robust", 3, True))  # fmt: skip
# Three columns: train and validation on top, the best star and the test
# figures under them (a narrower plot wraps them into more rows).
LEGEND_ORDER = ("train_acc", "val_clean_acc", "val_robust_acc", "test_clean_acc",
                "test_robust_acc")  # fmt: skip


def make_plot(layout: pg.GraphicsLayoutWidget, title: str, y_label: str,
              **kwargs) -> pg.PlotItem:
    plot = layout.addPlot(title=title, **kwargs)
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.25)
    # Grid at major ticks only: the minor grid lines more than double the cost
    # of repainting the plots (measured ~45 vs ~19 ms), which happens at every
    # redraw while a run streams batch losses.
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setStyle(maxTickLevel=0)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.disableAutoRange()
    plot.getAxis("left").setWidth(48)
    return plot


class TrainingCurves(QWidget):
    """Three plots built once; x is in epochs (batches as fractions of one)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        QVBoxLayout(self).addWidget(self.view)
        self.layout().setContentsMargins(0, 0, 0, 0)
        self.loss_plot = make_plot(self.view, "Loss", "loss")
        self.acc_plot = make_plot(self.view, "Accuracy", "accuracy (%)")
        self.view.nextRow()
        self.lr_plot = make_plot(self.view, "Learning rate", "lr")
        self.method_plot = make_plot(self.view, "Method figures", "accuracy (%)")
        self.method_plot.setYRange(0, 100, padding=0.02)
        OutsideLegend(self.method_plot, size="7pt")
        self.method_note = pg.TextItem("this method reports no further figures",
                                       color=(120, 120, 120), anchor=(0.5, 0.5))
        self.method_plot.addItem(self.method_note)
        self.method_curves: dict[str, pg.PlotDataItem] = {}
        self.method_best = self.method_plot.plot(
            pen=None, symbol="star", symbolSize=16, symbolPen="k",
            symbolBrush="#ffd700")
        self.view.ci.layout.setRowStretchFactor(0, 3)
        self.view.ci.layout.setRowStretchFactor(1, 1)
        self.acc_plot.setYRange(0, 100, padding=0.02)
        # Legends above the data: rising accuracy curves never run under them.
        OutsideLegend(self.loss_plot)
        OutsideLegend(self.acc_plot, max_columns=3)
        self.batch_curve = self.loss_plot.plot(
            pen=pg.mkPen((150, 150, 150), width=1), name="batch")
        self.batch_curve.setDownsampling(auto=True, method="peak")
        self.batch_curve.setClipToView(True)
        self.train_loss = self.loss_plot.plot(
            pen=pg.mkPen(CLASS_COLORS[0], width=2), symbol="o", symbolSize=5,
            symbolBrush=CLASS_COLORS[0], name="train (epoch)")
        self.acc_curves = {}
        for key, label, i, dashed in ACC_CURVES:
            color = CLASS_COLORS[i]
            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            self.acc_curves[key] = self.acc_plot.plot(
                pen=pg.mkPen(color, width=2, style=style),
                symbol="t" if dashed else "o", symbolSize=6 if dashed else 5,
                symbolPen=color, symbolBrush=None if dashed else color, name=label)
        self.best_marker = self.acc_plot.plot(
            pen=None, symbol="star", symbolSize=16, symbolPen="k",
            symbolBrush="#ffd700", name="best (on validation)")
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen(CLASS_COLORS[4], width=2),
                                          symbol="o", symbolSize=4)
        self.epochs = 1
        self.steps_per_epoch = 0
        self.reset(1)
        add_copy_action(self)

    def reset(self, epochs: int, validation: bool = True,
              selection: str = "robust_acc") -> None:
        """Empty curves for a run of ``epochs`` epochs; without a
        ``validation`` split its curves and the best star leave the legend.
        ``selection`` is the figure (``val_`` + it) that chooses the best
        epoch, the defense's ``selection_key``."""
        self.epochs = max(1, epochs)
        self.validation = validation
        self.selection = f"val_{selection}"
        for curve in self.method_curves.values():
            self.method_plot.removeItem(curve)
        self.method_curves = {}
        self.method_plot.legend.clear()
        self.method_best.setData([], [])
        self.method_note.setVisible(True)
        self.method_note.setPos(self.epochs / 2, 50)
        legend = self.acc_plot.legend
        legend.clear()
        labels = {key: label for key, label, _, _ in ACC_CURVES}
        entries = [(self.acc_curves[key], labels[key]) for key in LEGEND_ORDER]
        entries.insert(3, (self.best_marker, "best (on validation)"))
        for item, label in entries:
            shown = validation or item is self.acc_curves["train_acc"] or \
                label.startswith("test")
            item.setVisible(shown)
            if shown:
                legend.addItem(item, label)
        self.steps_per_epoch = 0
        self._batch: list[tuple[int, float]] = []
        self._epoch: dict[str, list[tuple[int, float]]] = {k: [] for k in EPOCH_KEYS}
        # What changed since the last redraw: a redraw runs up to 30 times a
        # second while batches stream in, and re-setting the epoch curves
        # (symbols) and axis ranges each time costs the UI thread tens of ms.
        self._epochs_dirty = False
        self._loss_top = 0.0  # largest finite loss so far
        self._shown_loss_top = 0.0
        for curve in (self.batch_curve, self.train_loss, self.lr_curve,
                      self.best_marker, *self.acc_curves.values()):
            curve.setData([], [])
        for plot in self._epoch_plots():
            plot.setXRange(0, self.epochs, padding=0.02)
        self.loss_plot.setYRange(0, 1, padding=0.02)
        self.lr_plot.setYRange(0, 0.1, padding=0.05)

    def set_steps_per_epoch(self, n: int) -> None:
        self.steps_per_epoch = max(1, n)
        self._draw_batches()

    def add_batch(self, step: int, value: float) -> None:
        self._batch.append((step, value))
        self._raise_loss_top(value)

    def _epoch_plots(self) -> tuple[pg.PlotItem, ...]:
        return (self.loss_plot, self.acc_plot, self.lr_plot, self.method_plot)

    def add_epoch(self, name: str, epoch: int, value: float) -> None:
        if name not in self._epoch and method_figure(name):
            self._epoch[name] = []
        if name in self._epoch:
            # A resumed run may report an epoch again: the new value replaces it.
            points = [p for p in self._epoch[name] if p[0] != epoch]
            self._epoch[name] = [*points, (epoch, value)]
            self._epochs_dirty = True
            if name == "train_loss":
                self._raise_loss_top(value)

    def _raise_loss_top(self, value: float) -> None:
        if np.isfinite(value) and value > self._loss_top:
            self._loss_top = value

    def points(self, name: str) -> int:
        """How many points a series holds (``batch_loss`` or an epoch key)."""
        return len(self._batch) if name == "batch_loss" else len(self._epoch[name])

    def best_epoch(self) -> int | None:
        """The first epoch of the highest selection figure (validation
        robust accuracy unless the method chooses on another; None without
        validation figures)."""
        points = sorted(self._epoch.get(self.selection, ()))
        if not points:
            return None
        top = max(v for _, v in points)
        return next(e for e, v in points if v == top)

    def redraw(self) -> None:
        """Push the collected points to the curves (call at most ~30 Hz)."""
        self._draw_batches()
        if self._loss_top != self._shown_loss_top:
            self._shown_loss_top = self._loss_top
            self.loss_plot.setYRange(0, self._loss_top * 1.1 or 1, padding=0.02)
        if not self._epochs_dirty:
            return
        self._epochs_dirty = False
        for key, curve in (("train_loss", self.train_loss), ("lr", self.lr_curve)):
            curve.setData(*_xy(self._epoch[key]))
        for key, curve in self.acc_curves.items():
            x, y = _xy(self._epoch[key])
            curve.setData(x, 100 * y)
        self._draw_method_figures()
        best = self.best_epoch()
        in_acc = self.selection == "val_robust_acc"
        for marker, own in ((self.best_marker, in_acc),
                            (self.method_best, not in_acc)):
            if best is None or not own:
                marker.setData([], [])
            else:
                value = dict(self._epoch[self.selection])[best]
                marker.setData([best], [100 * value])
        last = max([e for s in self._epoch.values() for e, _ in s], default=0)
        if last > self.epochs:
            self.epochs = last
            for plot in self._epoch_plots():
                plot.setXRange(0, self.epochs, padding=0.02)
        rates = [v for _, v in self._epoch["lr"]]
        if rates:
            self.lr_plot.setYRange(0, max(rates) * 1.1 or 1, padding=0.05)

    def _draw_method_figures(self) -> None:
        keys = [k for k in self._epoch if method_figure(k)]
        stems = sorted({k.split("_", 1)[1] for k in keys})
        for key in keys:
            curve = self.method_curves.get(key)
            if curve is None:
                stem = key.split("_", 1)[1]
                color = CLASS_COLORS[(5 + stems.index(stem)) % len(CLASS_COLORS)]
                dashed = key.startswith("test_")
                style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
                label = f"{key.split('_', 1)[0]} {stem.removesuffix('_acc')}"
                curve = self.method_plot.plot(
                    pen=pg.mkPen(color, width=2, style=style),
                    symbol="t" if dashed else "o", symbolSize=5, symbolPen=color,
                    symbolBrush=None if dashed else color, name=label)
                self.method_curves[key] = curve
            x, y = _xy(self._epoch[key])
            curve.setData(x, 100 * y)
        self.method_note.setVisible(not keys)

    def _draw_batches(self) -> None:
        if not self.steps_per_epoch:  # x in epochs needs the run's size
            self.batch_curve.setData([], [])
            return
        x, y = _xy(self._batch)
        self.batch_curve.setData(x / self.steps_per_epoch, y)


def _xy(points: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    if not points:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(points, dtype=float)
    return arr[:, 0], arr[:, 1]
