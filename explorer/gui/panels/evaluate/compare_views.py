"""Views of an evaluation beside its table: overlaid accuracy-vs-eps curves
(a click on one asks for the gallery of the images that break at that eps),
masking-check verdicts per model, and the same images attacked under each
model. All items are built once and updated in place."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.gui.widgets.aspect_image import AspectImage, ElidedLabel, chw_to_hwc
from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend
from explorer.gui.widgets.triplet_view import FOOLED, HELD

MAX_MODELS = 8
PASS, WARN = "#2e7d32", "#b26a00"
PICTURE = 40  # px per example image
NAME_CHARS = 26  # the masking table's name column: at most this many average chars
CAPTION = 64  # px per example caption (elided; the tooltip has it all)


class EpsCurves(pg.PlotWidget):
    """Robust accuracy against eps, one curve per model (curves made once).
    A left click emits ``point_clicked(model index, eps)`` for the drawn
    point nearest to it on screen."""

    point_clicked = Signal(int, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        plot = self.getPlotItem()
        plot.setTitle("Accuracy vs eps (APGD-CE, l-inf)")
        plot.setLabel("bottom", "eps (pixel units)")
        plot.setLabel("left", "accuracy (%)")
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setYRange(0, 100, padding=0.05)
        plot.setXRange(0, 0.2, padding=0.02)
        plot.getAxis("left").setWidth(44)
        # eps must read as itself (0.05), never as "50 (x0.001)": pyqtgraph
        # 0.14 scales by an SI prefix inside these ranges whatever the flag.
        plot.getAxis("bottom").setSIPrefixEnableRanges(((math.inf, math.inf),))
        self.setMouseEnabled(x=False, y=False)
        self.legend = OutsideLegend(plot)
        self.curves = [plot.plot(pen=pg.mkPen(CLASS_COLORS[i], width=2), symbol="o",
                                 symbolSize=5, symbolBrush=CLASS_COLORS[i])
                       for i in range(MAX_MODELS)]
        self.names: list[str] = []
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.setToolTip("Click a point: the images that break at that eps")

    def prepare(self, names: Sequence[str], eps_max: float) -> None:
        self.legend.clear()
        self.names = list(names)[:MAX_MODELS]
        for i, curve in enumerate(self.curves):
            curve.setData([], [])
            if i < len(self.names):
                self.legend.addItem(curve, self.names[i])
        self.getPlotItem().setXRange(0, max(eps_max, 1e-3), padding=0.04)

    def set_curve(self, i: int, eps: np.ndarray, acc: np.ndarray) -> None:
        if i < len(self.curves):
            self.curves[i].setData(np.asarray(eps), 100 * np.asarray(acc))

    def drawn(self) -> int:
        return sum(1 for c in self.curves if c.xData is not None and len(c.xData))

    def nearest(self, scene_pos: QPointF) -> tuple[int, float] | None:
        """The drawn point nearest ``scene_pos`` in pixels: (model, eps)."""
        vb = self.getPlotItem().getViewBox()
        best: tuple[float, int, float] | None = None
        for i, curve in enumerate(self.curves[:len(self.names)]):
            xs, ys = curve.getData()
            if xs is None:
                continue
            for x, y in zip(xs, ys, strict=True):
                p = vb.mapViewToScene(QPointF(float(x), float(y)))
                d = math.hypot(p.x() - scene_pos.x(), p.y() - scene_pos.y())
                if best is None or d < best[0]:
                    best = (d, i, float(x))
        return None if best is None else best[1:]

    @Slot(object)
    def _on_scene_clicked(self, event) -> None:
        vb = self.getPlotItem().getViewBox()
        pos = event.scenePos()
        if (event.button() != Qt.MouseButton.LeftButton
                or not vb.sceneBoundingRect().contains(pos)):
            return
        hit = self.nearest(pos)
        if hit is not None:
            self.point_clicked.emit(*hit)


# Column headings short enough for six checks beside the curves.
SHORT_CHECKS = {
    "iterative-vs-single-step": "iterative\n≥ 1 step", "more-steps-restarts":
    "more\nsteps", "white-vs-black-box": "white\n≥ black", "large-eps":
    "large\neps", "loss-rises": "loss\nrises", "deterministic": "same\noutput",
}  # fmt: skip


def _short(name: str, width: int = 16) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


class CheckVerdicts(QWidget):
    """Rows are models (named in full in the first column and every
    tooltip), columns checks: a green tick or an amber warning (tooltip: what
    was measured and what it means); the warnings' one-line explanations are
    spelled out below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for header in (self.table.horizontalHeader(), self.table.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Names are a column of their own (a row header cannot elide or be
        # sized apart): as wide as the longest, up to NAME_CHARS characters,
        # then cut in the middle, where two runs of one model differ least.
        self.table.verticalHeader().hide()
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # nothing to act on
        self.title = QLabel("<b>Gradient-masking checks</b>")
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.title)
        box.addWidget(self.table, 1)
        box.addWidget(self.notes)
        self.verdicts: dict[tuple[int, str], bool] = {}
        self._warnings: dict[int, list[str]] = {}
        self.names: list[str] = []
        self._say("Verdicts appear here per model.", "#444")

    def _say(self, text: str, color: str) -> None:
        self.notes.setText(text)
        self.notes.setStyleSheet(f"font-size: 11px; color: {color};")

    def prepare(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.verdicts, self._warnings = {}, {}
        self.table.clear()
        self.table.setColumnCount(1)
        self.table.setRowCount(len(names))
        self.table.setHorizontalHeaderItem(0, QTableWidgetItem("model"))
        for row, name in enumerate(names):
            item = QTableWidgetItem(name)
            item.setToolTip(name)
            self.table.setItem(row, 0, item)
        self.table.horizontalHeader().setMaximumSectionSize(
            NAME_CHARS * self.table.fontMetrics().averageCharWidth())
        self._say("Verdicts appear here per model.", "#444")

    def set_checks(self, row: int, arrays: dict[str, np.ndarray]) -> None:
        for key, name, passed, measured, why in zip(
                arrays["key"], arrays["name"], arrays["passed"],
                arrays["value_text"], arrays["explanation"], strict=True):
            col = self._column(str(key), str(name))
            item = QTableWidgetItem("✔" if passed else "⚠")
            item.setForeground(QBrush(QColor(PASS if passed else WARN)))
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(f"{self.names[row]} — {name}: "
                            f"{'pass' if passed else 'warning'}\n{measured}\n{why}")
            self.table.setItem(row, col, item)
            self.verdicts[(row, str(key))] = bool(passed)
            if not passed:
                self._warnings.setdefault(row, []).append(f"{name}: {why}")
        lines = [f"⚠ {html.escape(self.names[r], quote=False)} — {w}"
                 for r in sorted(self._warnings) for w in self._warnings[r]]
        if lines:
            self._say("<br>".join(lines), WARN)
        else:
            self._say(f"✔ All {sum(self.verdicts.values())} checks passed so far: "
                      "no sign of gradient masking.", PASS)

    def _column(self, key: str, name: str) -> int:
        for col in range(1, self.table.columnCount()):  # 0: the model names
            item = self.table.horizontalHeaderItem(col)
            if item.data(Qt.ItemDataRole.UserRole) == key:
                return col
        col = self.table.columnCount()
        self.table.insertColumn(col)
        header = QTableWidgetItem(SHORT_CHECKS.get(key, name))
        header.setData(Qt.ItemDataRole.UserRole, key)
        header.setToolTip(name)
        self.table.setHorizontalHeaderItem(col, header)
        return col


class ExampleMatrix(QWidget):
    """Rows: the clean images, then each model's adversarial versions;
    captions "true → predicted", red when fooled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(0)
        self.captions: dict[int, list[str]] = {}
        self.classes: Sequence[str] = ()
        self._rows: dict[int, list[QLabel]] = {}

    def prepare(self, names: Sequence[str], classes: Sequence[str]) -> None:
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.classes, self.captions, self._rows = classes, {}, {}
        for r, name in enumerate(["clean", *names]):
            label = QLabel(_short(name, 20))
            label.setStyleSheet("font-size: 11px; font-weight: 600;")
            self.grid.addWidget(label, 2 * r, 0, 2, 1)

    def _name(self, k: int) -> str:
        return self.classes[k] if 0 <= k < len(self.classes) else str(k)

    def set_row(self, row: int, images: np.ndarray, y: np.ndarray,
                pred: np.ndarray | None) -> None:
        """``row`` 0 is the clean images (``pred`` None), model i is row i + 1."""
        captions = []
        for j, image in enumerate(images):
            picture = AspectImage(PICTURE)
            picture.setFixedSize(PICTURE, PICTURE)
            picture.set_image(chw_to_hwc(image))
            true = self._name(int(y[j]))
            text = true if pred is None else f"{true} → {self._name(int(pred[j]))}"
            shown = true if pred is None else f"{true}\n→ {self._name(int(pred[j]))}"
            color = ("#222" if pred is None else
                     HELD if int(pred[j]) == int(y[j]) else FOOLED)
            caption = ElidedLabel()
            caption.setFixedWidth(CAPTION)
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            caption.setStyleSheet(f"font-size: 9px; color: {color};")
            caption.setText(shown)  # after the style: elided in its own font
            caption.setToolTip(text)
            self.grid.addWidget(picture, 2 * row, j + 1, Qt.AlignmentFlag.AlignHCenter)
            self.grid.addWidget(caption, 2 * row + 1, j + 1,
                                Qt.AlignmentFlag.AlignHCenter)
            captions.append(text)
        self.captions[row] = captions
