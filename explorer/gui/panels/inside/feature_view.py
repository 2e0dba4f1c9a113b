"""Penultimate features of clean and adversarial images, projected to 2-D:
clean points filled in their class colour, adversarial ones hollow, a line
from each clean point to its adversarial twin, MMC centres as stars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
    QWidget,
)

from explorer.gui.panels.inside.result_tab import LegendSceneView
from explorer.gui.panels.inside.slice_view import class_name
from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend


def _colour(k: int) -> str:
    return CLASS_COLORS[int(k) % len(CLASS_COLORS)]


class FeatureView(LegendSceneView, pg.GraphicsLayoutWidget):
    """The projection on the left, a legend on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: dict[str, Any] | None = None
        self.plot = self.addPlot(row=0, col=0)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.arrows = pg.PlotCurveItem(pen=pg.mkPen((90, 90, 90, 110), width=1),
                                       connect="pairs")
        self.clean = pg.ScatterPlotItem(size=7, pen=pg.mkPen("w", width=0.5))
        self.adv = pg.ScatterPlotItem(size=8, brush=None)
        self.centres = pg.ScatterPlotItem(symbol="star", size=20,
                                          pen=pg.mkPen("k", width=1.5))
        for item in (self.arrows, self.clean, self.adv, self.centres):
            self.plot.addItem(item)
        self.legend = OutsideLegend(size="9pt")
        self.addItem(self.legend, row=0, col=1)

    def show_result(self, result: dict[str, Any]) -> None:
        self.result = result
        meta = result.get("meta") or {}
        classes = list(meta.get("classes") or [])
        labels = np.asarray(result["labels"], int)
        clean = np.asarray(result["clean"], float)
        n_classes = max(len(classes), int(labels.max()) + 1 if len(labels) else 0)
        self.clean.setData(clean[:, 0], clean[:, 1],
                           brush=[pg.mkBrush(_colour(k)) for k in labels])
        adv = result.get("adv")
        if adv is not None:
            adv = np.asarray(adv, float)
            self.adv.setData(adv[:, 0], adv[:, 1], brush=None,
                             pen=[pg.mkPen(_colour(k), width=1.5) for k in labels])
            pairs = np.empty((2 * len(clean), 2))
            pairs[0::2], pairs[1::2] = clean, adv
            self.arrows.setData(pairs[:, 0], pairs[:, 1])
        else:
            self.adv.setData([], [])
            self.arrows.setData([], [])
        centres = result.get("centres")
        if centres is not None:
            c = np.asarray(centres, float)
            self.centres.setData(c[:, 0], c[:, 1],
                                 brush=[pg.mkBrush(_colour(k)) for k in range(len(c))])
        else:
            self.centres.setData([], [])
        self._axes(result, meta)
        self._legend(classes, n_classes, adv is not None, centres is not None)
        self.plot.autoRange()

    def _axes(self, r: dict[str, Any], meta: dict[str, Any]) -> None:
        explained = r.get("explained")
        for i, side in enumerate(("bottom", "left")):
            if explained is not None:
                share = 100 * float(np.asarray(explained)[i])
                text = f"principal component {i + 1} ({share:.1f}% of variance)"
            else:
                text = f"t-SNE {i + 1} (no units)"
            self.plot.setLabel(side, text)
        labels = np.asarray(r["labels"])
        title = f"{meta.get('model', 'model')}: {len(labels)} images"
        title += f", clean accuracy {100 * np.mean(r['pred_clean'] == labels):.0f}%"
        if "pred_adv" in r:
            eps = meta.get("eps")
            at = f" (PGD eps {eps:g})" if isinstance(eps, int | float) else ""
            title += (f", adversarial{at} "
                      f"{100 * np.mean(np.asarray(r['pred_adv']) == labels):.0f}%")
        self.plot.setTitle(title, size="10pt")

    def _legend(self, classes: list[str], n_classes: int, adv: bool,
                centres: bool) -> None:
        self.legend.clear()
        for k in range(n_classes):
            swatch = pg.ScatterPlotItem(symbol="o", size=9, pen=None,
                                        brush=_colour(k))
            self.legend.addItem(swatch, f"{k}: {class_name(classes, k)}")
        self.legend.addItem(pg.ScatterPlotItem(size=8, brush="#555", pen=None),
                            "clean (filled)")
        if adv:
            self.legend.addItem(pg.ScatterPlotItem(size=8, brush=None,
                                                   pen=pg.mkPen("#555", width=1.5)),
                                "adversarial (hollow)")
            self.legend.addItem(self.arrows, "clean → adversarial")
        if centres:
            self.legend.addItem(pg.ScatterPlotItem(symbol="star", size=14,
                                                   brush="#555", pen="k"),
                                "MMC centre")

    def csv_table(self) -> tuple[list[str], list[Sequence[Any]]]:
        r = self.result or {}
        header = ["index", "label", "pred_clean", "clean_1", "clean_2"]
        adv = r.get("adv")
        if adv is not None:
            header += ["pred_adv", "adv_1", "adv_2"]
        rows = []
        for i, (label, pred, xy) in enumerate(zip(r.get("labels", []),
                                                  r.get("pred_clean", []),
                                                  r.get("clean", []), strict=True)):
            row: list[Any] = [i, int(label), int(pred), float(xy[0]), float(xy[1])]
            if adv is not None:
                row += [int(r["pred_adv"][i]), float(adv[i][0]), float(adv[i][1])]
            rows.append(row)
        return header, rows


class FeatureForm(QWidget):
    """Method, number of images, adversarial examples and their eps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = QComboBox()
        self.method.addItem("PCA", "pca")
        self.method.addItem("t-SNE (slower)", "tsne")
        self.n = QSpinBox()
        self.n.setRange(2, 4000)
        self.n.setValue(300)
        self.n.setToolTip("the first N images of the current split")
        self.adversarial = QCheckBox("with adversarial examples (PGD)")
        self.adversarial.setChecked(True)
        self.eps = QDoubleSpinBox()
        self.eps.setDecimals(4)
        self.eps.setRange(0.001, 1.0)
        self.eps.setValue(0.1)
        self.perplexity = QDoubleSpinBox()
        self.perplexity.setRange(1.0, 200.0)
        self.perplexity.setValue(30.0)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("method", self.method)
        form.addRow("images N", self.n)
        form.addRow(self.adversarial)
        form.addRow("eps", self.eps)
        form.addRow("t-SNE perplexity", self.perplexity)

    def values(self) -> dict[str, Any]:
        return {"method": self.method.currentData(), "n": self.n.value(),
                "adversarial": self.adversarial.isChecked(),
                "eps": round(self.eps.value(), 6),
                "perplexity": self.perplexity.value()}
