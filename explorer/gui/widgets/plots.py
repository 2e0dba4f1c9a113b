"""Small pyqtgraph views built once and updated with setData/setImage."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGraphicsLayoutItem, QWidget

from explorer.gui.widgets.copy_image import add_copy_action

pg.setConfigOptions(antialias=True, background="w", foreground="k")

# Colours that stay distinct for up to 10 classes (toy sets, legends).
CLASS_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip


class BarChart(pg.PlotWidget):
    """Horizontal bars, one per category, names on the left (e.g. per-class
    accuracy): long class names stay readable at any width."""

    def __init__(self, title: str, x_label: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTitle(title)
        self.setLabel("bottom", x_label)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.showGrid(x=True, alpha=0.3)
        self.invertY(True)
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.7, brush="#1f77b4")
        self.addItem(self.bars)
        self.values: np.ndarray = np.zeros(0)
        add_copy_action(self)

    def set_values(
        self, values: Sequence[float], labels: Sequence[str], x_max: float = 100.0
    ) -> None:
        v = np.nan_to_num(np.asarray(values, dtype=float))
        y = np.arange(len(v))
        self.values = v
        self.bars.setOpts(x0=np.zeros(len(v)), y=y, width=v, height=0.7)
        self.getAxis("left").setTicks([[(i, _short(lab, 18)) for i, lab in
                                        enumerate(labels)]])
        self.setYRange(-0.6, max(len(v), 1) - 0.4, padding=0)
        self.setXRange(0, x_max, padding=0.02)


class HeatMap(pg.GraphicsLayoutWidget):
    """A matrix as an image with labelled axes, a colour bar and cell counts."""

    def __init__(self, title: str, x_label: str, y_label: str, parent=None) -> None:
        super().__init__(parent)
        self.plot = self.addPlot(title=title)
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False
        )
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.labels = _CellLabels()
        self.plot.addItem(self.labels)
        self.matrix: np.ndarray = np.zeros((0, 0))
        add_copy_action(self)

    def set_matrix(
        self, matrix: np.ndarray, labels: Sequence[str], annotate: bool = True
    ) -> None:
        m = np.asarray(matrix, dtype=float)
        self.matrix = m
        top = float(m.max()) if m.size else 1.0
        self.image.setImage(m, autoLevels=False, levels=(0, max(top, 1.0)))
        self.colorbar.setLevels((0, max(top, 1.0)))
        # Numbers under the columns (names do not fit there), names by the rows.
        left = [(i + 0.5, f"{_short(label, 12)} {i}") for i, label in enumerate(labels)]
        bottom = [(i + 0.5, str(i)) for i in range(len(labels))]
        for side, ticks in (("bottom", bottom), ("left", left)):
            axis = self.plot.getAxis(side)
            axis.enableAutoSIPrefix(False)
            axis.setTicks([ticks])
        self._annotate(m if annotate else np.zeros((0, 0)), top)
        self.plot.setRange(xRange=(0, m.shape[1]), yRange=(0, m.shape[0]), padding=0)

    def _annotate(self, m: np.ndarray, top: float) -> None:
        self.labels.set_cells(m, top)


class _CellLabels(pg.GraphicsObject):
    """The numbers in a heat map's cells, painted in one pass.

    One item for all cells: a TextItem per cell made each update cost tens
    of milliseconds on the UI thread.
    """

    def __init__(self) -> None:
        super().__init__()
        self.m = np.zeros((0, 0))
        self.top = 1.0

    def set_cells(self, m: np.ndarray, top: float) -> None:
        self.prepareGeometryChange()
        self.m, self.top = m, top
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.m.shape[1], self.m.shape[0])

    def paint(self, painter: QPainter, *_args) -> None:
        if not self.m.size:
            return
        # Draw in device pixels so the text keeps its size whatever the zoom.
        transform = painter.transform()
        painter.resetTransform()
        for (r, c), value in np.ndenumerate(self.m):
            if value == 0:
                continue
            box = transform.mapRect(QRectF(c, r, 1, 1))
            painter.setPen(QColor("black" if value > 0.6 * self.top else "white"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, f"{value:g}")
        painter.setTransform(transform)


class ScatterView(pg.PlotWidget):
    """2-D points coloured by class (toy data sets)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(title)
        self.setLabel("bottom", "x₁")
        self.setLabel("left", "x₂")
        self.setAspectLocked(True)
        self.points = pg.ScatterPlotItem(size=6, pen=None)
        self.addItem(self.points)
        add_copy_action(self)

    def set_points(self, xy: np.ndarray, labels: np.ndarray) -> None:
        brushes = [pg.mkBrush(CLASS_COLORS[int(k) % len(CLASS_COLORS)]) for k in labels]
        self.points.setData(x=xy[:, 0], y=xy[:, 1], brush=brushes)
        self.autoRange()


def _short(label: str, width: int = 9) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


# Where a plot's legend goes: the row of its (hidden) top axis, between the
# title and the view box, so no curve can ever run under it.
LEGEND_ROW = 1
LEGEND_MAX_CHARS = 40  # longer entry names are cut; the full name is the tooltip
_ENTRY_GAP = 10  # pixels between legend columns


class OutsideLegend(pg.LegendItem):
    """A legend above a plot's data area, never over its curves.

    pyqtgraph's own legend floats inside the view box, where growing curves
    run under it (the Training page's accuracy legend covered the train curve
    past 80 %). This one sits in a band of the plot reserved for it between
    the title and the view box (the row of the hidden top axis): the view box
    shrinks by the legend's height, whatever the data and the range do. Its
    entries flow into as many columns as the plot's width holds, so a narrow
    plot gets more rows, not a legend wider than itself. Without a plot it
    is a plain legend for a caller's own layout (beside an image, say).
    ``max_columns`` caps the columns where the entries' order pairs them up.
    """

    def __init__(self, plot: pg.PlotItem | None = None, *, size: str = "8pt",
                 max_columns: int = 0, max_chars: int = LEGEND_MAX_CHARS,
                 **kwargs) -> None:
        kwargs.setdefault("verSpacing", -4)
        super().__init__(offset=None, labelTextSize=size, **kwargs)
        self.max_chars = max_chars
        self.max_columns = max_columns  # 0: as many as fit
        self.plot = plot
        self.layout.setContentsMargins(2, 0, 2, 0)
        if plot is not None:
            plot.legend = self  # plot(name=...) adds its curve here
            self.setParentItem(plot)
            plot.geometryChanged.connect(self.updateSize)
            plot.vb.geometryChanged.connect(self._place)

    def addItem(self, item, name: str) -> None:
        shown = _short(name, self.max_chars)
        super().addItem(item, shown)
        if shown != name:
            self.items[-1][1].setToolTip(name)

    def updateSize(self) -> None:
        """Re-flow the entries into the columns that fit, then reserve the
        legend's height above the view box (pyqtgraph's version only resizes
        the legend where it floats)."""
        columns = self._columns_that_fit()
        self.columnCount = columns
        for i in range(self.layout.count() - 1, -1, -1):
            self.layout.removeAt(i)
        for k, (sample, label) in enumerate(self.items):
            row, col = divmod(k, columns)
            self.layout.addItem(sample, row, 2 * col, Qt.AlignmentFlag.AlignVCenter)
            self.layout.addItem(label, row, 2 * col + 1)
        for col in range(columns - 1):
            self.layout.setColumnSpacing(2 * col + 1, _ENTRY_GAP)
        self.rowCount = -(-len(self.items) // columns) if self.items else 1
        self.layout.invalidate()
        size = self.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize)
        if not self.items:
            size = QSizeF(0, 0)
        self.resize(size)
        if self.plot is None:
            self.updateGeometry()  # the caller's layout asks for the new size
        else:
            self.plot.layout.setRowFixedHeight(LEGEND_ROW, size.height())
            self._place()

    def _place(self) -> None:
        """Centre the legend over the view box, just above it."""
        box = self.plot.vb.geometry()
        right = self.plot.geometry().width() - self.width()
        x = min(box.center().x() - self.width() / 2, right)
        self.setPos(max(0.0, x), box.top() - self.height())

    def _columns_that_fit(self) -> int:
        n = len(self.items)
        if self.plot is None or n < 2:
            return max(1, min(n, self.columnCount))
        room = self.plot.geometry().width() - 8  # margins of plot and legend
        spacing = self.layout.horizontalSpacing()
        widths = [_hint_width(s) + spacing + _hint_width(lab) for s, lab in self.items]
        for columns in range(min(n, self.max_columns or n), 1, -1):
            used = sum(max(widths[c::columns]) for c in range(columns))
            if used + (columns - 1) * _ENTRY_GAP <= room:
                return columns
        return 1

    def mouseDragEvent(self, ev) -> None:
        ev.ignore()  # it stays in its band: dragged, it would cover the data


def _hint_width(item: QGraphicsLayoutItem) -> float:
    return item.effectiveSizeHint(Qt.SizeHint.PreferredSize).width()
