"""CIFS channel importances of one image: clean and adversarial masks as two
bar series over the block's channels, ordered by clean importance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from explorer.gui.panels.inside.result_tab import LegendSceneView
from explorer.gui.panels.inside.slice_view import class_name
from explorer.gui.widgets.plots import OutsideLegend

CLEAN_COLOUR, ADV_COLOUR = "#1f77b4", "#d62728"


class ChannelView(LegendSceneView, pg.PlotWidget):
    """Clean (blue) and adversarial (red) importance per channel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: dict[str, Any] | None = None
        self.plot = self.getPlotItem()
        self.plot.hideButtons()
        self.plot.showGrid(y=True, alpha=0.2)
        self.plot.setLabel("bottom", "channel, by decreasing clean importance")
        self.plot.setLabel("left", "importance (CIFS mask; mean 1)")
        self.legend = OutsideLegend(self.plot, size="9pt")
        self.clean = pg.BarGraphItem(x=[], height=[], width=0.4,
                                     brush=CLEAN_COLOUR, pen=None, name="clean")
        self.adv = pg.BarGraphItem(x=[], height=[], width=0.4, brush=ADV_COLOUR,
                                   pen=None, name="adversarial")
        self.plot.addItem(self.clean)
        self.plot.addItem(self.adv)
        self.baseline = pg.InfiniteLine(pos=1.0, angle=0,
                                        pen=pg.mkPen("#888",
                                                     style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.baseline)

    def heights(self) -> tuple[np.ndarray, np.ndarray]:
        """(clean, adversarial) importances in the plotted order."""
        r = self.result or {}
        if not r:
            return np.zeros(0), np.zeros(0)
        order = np.asarray(r["order"], int)
        return np.asarray(r["clean"], float)[order], np.asarray(r["adv"], float)[order]

    def show_result(self, result: dict[str, Any]) -> None:
        self.result = result
        clean, adv = self.heights()
        positions = np.arange(len(clean), dtype=float)
        self.clean.setOpts(x=positions - 0.2, height=clean, width=0.4)
        self.adv.setOpts(x=positions + 0.2, height=adv, width=0.4)
        meta = result.get("meta") or {}
        classes = list(meta.get("classes") or [])
        label = int(result["label"])
        title = f"{meta.get('model', 'model')}: {len(clean)} channels, label " \
                f"{class_name(classes, label)}"
        if "pred_clean" in result:
            title += f"; clean → {class_name(classes, int(result['pred_clean']))}"
        if "pred_adv" in result:
            eps = meta.get("eps")
            at = f" (PGD eps {eps:g})" if isinstance(eps, int | float) else ""
            title += (f", adversarial{at} → "
                      f"{class_name(classes, int(result['pred_adv']))}")
        self.plot.setTitle(title, size="10pt")
        self.plot.autoRange()

    def csv_table(self) -> tuple[list[str], list[Sequence[Any]]]:
        r = self.result or {}
        header = ["rank", "channel", "clean_importance", "adv_importance"]
        if not r:
            return header, []
        clean, adv = self.heights()
        order = np.asarray(r["order"], int)
        return header, [[i, int(order[i]), float(clean[i]), float(adv[i])]
                        for i in range(len(order))]


class ChannelForm(QWidget):
    """PGD eps and steps; a line saying when the model has no CIFS block."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.eps = QDoubleSpinBox()
        self.eps.setDecimals(4)
        self.eps.setRange(0.001, 1.0)
        self.eps.setValue(0.1)
        self.eps.setToolTip("l-inf budget of the PGD example (pixel units)")
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(10)
        self.note = QLabel()
        self.note.setWordWrap(True)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("eps", self.eps)
        form.addRow("PGD steps", self.steps)
        form.addRow(self.note)

    def values(self) -> dict[str, Any]:
        return {"eps": round(self.eps.value(), 6), "steps": self.steps.value()}
