"""Decision regions on a 2-D slice of image space, one map per model.

Each map colours the plane's grid by the predicted class; paler means less
sure (lightness follows the top softmax probability). The image sits at the
origin, each model's adversarial point is projected onto the plane, and the
l-inf eps-ball cut by the plane is drawn as an outline. Both axes are l2
distances in pixels, so each map keeps a square view box at one scale and
shows exactly the computed grid (grown only to hold a mark outside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from explorer.gui.panels.inside.result_tab import LegendSceneView
from explorer.gui.panels.inside.square_fit import SquareMapsWidget, map_bounds
from explorer.gui.widgets.image_grid import chw_to_hwc
from explorer.gui.widgets.plots import CLASS_COLORS, OutsideLegend

DIRECTION_CHOICES = (("adversarial + random", ("adv", "random")),
                     ("two adversarial", ("adv", "adv")),
                     ("two random", ("random", "random")))
KIND_WORDS = {"adv": "adversarial", "grad": "gradient sign", "random": "random"}
_RGB = np.array([QColor(c).getRgbF()[:3] for c in CLASS_COLORS])


def class_name(classes: Sequence[str], k: int) -> str:
    return classes[k] if 0 <= k < len(classes) else f"class {k}"


def slice_rgb(pred: np.ndarray, max_prob: np.ndarray, n_classes: int) -> np.ndarray:
    """Class colours, paler where the model is less sure: H×W×3 uint8."""
    k = max(int(n_classes), 2)
    sure = np.clip((np.asarray(max_prob, float) - 1 / k) / (1 - 1 / k), 0, 1)
    strength = 0.3 + 0.7 * sure  # never fully white: the class stays visible
    colour = _RGB[np.asarray(pred, int) % len(_RGB)]
    rgb = 1.0 - (1.0 - colour) * strength[..., None]
    return (rgb * 255 + 0.5).astype(np.uint8)


class _SliceMap:
    """One model's plot: the class map, the ball, the image and adv point."""

    def __init__(self) -> None:
        self.plot = pg.PlotItem()
        self.plot.setAspectLocked(True)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.ball = pg.PlotCurveItem(pen=pg.mkPen("k", width=2,
                                                  style=Qt.PenStyle.DashLine))
        self.origin = pg.ScatterPlotItem(symbol="o", size=11, brush="w",
                                         pen=pg.mkPen("k", width=2))
        self.adv = pg.ScatterPlotItem(symbol="x", size=15, brush="k",
                                      pen=pg.mkPen("k", width=1))
        for item in (self.image, self.ball, self.origin, self.adv):
            self.plot.addItem(item)


class SliceView(LegendSceneView, SquareMapsWidget):
    """Maps side by side, then the image and a legend on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: dict[str, Any] | None = None
        self.maps = self.addLayout(row=0, col=0)
        self.side = self.addLayout(row=0, col=1)
        self.side.setMaximumWidth(190)
        self.image_title = self.side.addLabel("", row=0, col=0, size="9pt")
        self.image_box = self.side.addViewBox(row=1, col=0, lockAspect=True,
                                              invertY=True, enableMouse=False)
        self.image_box.setMaximumHeight(110)
        self.thumb = pg.ImageItem(axisOrder="row-major")
        self.image_box.addItem(self.thumb)
        self.legend = OutsideLegend(size="9pt")
        self.side.addItem(self.legend, row=2, col=0)
        self._pool: list[_SliceMap] = []
        self._shown: list[_SliceMap] = []
        self.names: list[str] = []

    def show_result(self, result: dict[str, Any]) -> None:
        meta = result.get("meta") or {}
        pred = np.asarray(result["pred"])
        probs = np.asarray(result["max_prob"])
        coords = np.asarray(result["coords"], float)
        classes = list(meta.get("classes") or [])
        n_classes = max(len(classes), int(pred.max()) + 1, 2)
        names = list(meta.get("models") or [])
        names += [f"model {m + 1}" for m in range(len(names), len(pred))]
        kinds = [str(k) for k in np.atleast_1d(result.get("direction_kinds",
                                                          ["?", "?"]))]
        self.result, self.names = result, names[:len(pred)]
        self._use_maps(len(pred))
        step = coords[1] - coords[0] if len(coords) > 1 else 1.0
        rect = QRectF(coords[0] - step / 2, coords[0] - step / 2,
                      coords[-1] - coords[0] + step, coords[-1] - coords[0] + step)
        ball = np.asarray(result["ball"], float)
        ball = np.vstack([ball, ball[:1]])
        adv_points = np.asarray(result["adv_points"], float).reshape(-1, 2)
        adv_pred = np.atleast_1d(result.get("adv_pred", []))
        for m, view in enumerate(self._shown):
            view.image.setImage(slice_rgb(pred[m], probs[m], n_classes),
                                autoLevels=False, levels=(0, 255))
            view.image.setRect(rect)
            view.ball.setData(ball[:, 0], ball[:, 1])
            view.origin.setData([0.0], [0.0])
            a, b = adv_points[m]
            view.adv.setData([a], [b])
            went = ""
            if m < len(adv_pred):
                k = int(adv_pred[m])
                went = f" → {class_name(classes, k)}" + (
                    " (attack failed)" if k == int(result["label"]) else "")
            view.plot.setTitle(f"{self.names[m]}<br><span style='font-size:9pt'>"
                               f"adversarial point{went}</span>", size="10pt")
            for side, i in (("bottom", 0), ("left", 1)):
                word = KIND_WORDS.get(kinds[i], kinds[i]) if i < len(kinds) else "?"
                view.plot.setLabel(side, f"direction {i + 1}: {word} "
                                   "(l2 pixel units)")
            # The grid, the ball, the image and this model's adversarial point.
            marks = np.vstack([ball, [[0.0, 0.0]], adv_points[m:m + 1]])
            view.plot.setRange(map_bounds(rect, marks), padding=0)
        # Equal columns whatever the titles say, so the maps share one scale:
        # the layout gives each column its minimum plus an equal share.
        widest = max(v.plot.titleLabel.minimumWidth() for v in self._shown)
        for view in self._shown:
            view.plot.setMinimumWidth(widest + 60)
        self._show_side(result, classes, n_classes)
        self.set_square([v.plot for v in self._shown])

    def _use_maps(self, n: int) -> None:
        while len(self._pool) < n:
            self._pool.append(_SliceMap())
        for view in self._shown:
            self.maps.removeItem(view.plot)
        self._shown = self._pool[:n]
        for col, view in enumerate(self._shown):
            self.maps.addItem(view.plot, row=0, col=col)
            self.maps.layout.setColumnStretchFactor(col, 1)

    def _show_side(self, result: dict[str, Any], classes: list[str],
                   n_classes: int) -> None:
        image = chw_to_hwc(np.asarray(result["image"], np.float32))
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        self.thumb.setImage(image, autoLevels=False, levels=(0, 1))
        label = int(result["label"])
        self.image_title.setText(f"the image: {class_name(classes, label)}",
                                 size="9pt")
        self.legend.clear()
        for k in range(n_classes):
            swatch = pg.ScatterPlotItem(symbol="s", size=11, pen=None,
                                        brush=CLASS_COLORS[k % len(CLASS_COLORS)])
            self.legend.addItem(swatch, f"{k}: {class_name(classes, k)}")
        first = self._shown[0] if self._shown else _SliceMap()
        eps = float(result.get("eps", np.nan))
        self.legend.addItem(first.origin, "the image (origin)")
        self.legend.addItem(first.adv, "adversarial point")
        self.legend.addItem(first.ball, f"eps-ball (l-inf {eps:.3g})")

    def csv_table(self) -> tuple[list[str], list[Sequence[Any]]]:
        r = self.result or {}
        coords = np.asarray(r.get("coords", []), float)
        rows: list[Sequence[Any]] = []
        for m, (pred, prob) in enumerate(zip(r.get("pred", []), r.get("max_prob", []),
                                             strict=True)):
            name = self.names[m] if m < len(self.names) else f"model {m + 1}"
            for (i, j), k in np.ndenumerate(pred):
                rows.append((name, coords[j], coords[i], int(k), float(prob[i, j])))
        return ["model", "direction_1", "direction_2", "predicted_class",
                "max_probability"], rows


class SliceForm(QWidget):
    """Directions, grid size, eps and the extra built-in models to compare."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.directions = QComboBox()
        for text, kinds in DIRECTION_CHOICES:
            self.directions.addItem(text, kinds)
        self.grid = QSpinBox()
        self.grid.setRange(5, 401)
        self.grid.setValue(101)
        self.grid.setToolTip("points per side of the square")
        self.eps = QDoubleSpinBox()
        self.eps.setDecimals(4)
        self.eps.setRange(0.001, 1.0)
        self.eps.setSingleStep(0.01)
        self.eps.setValue(0.1)
        self.eps.setToolTip("l-inf budget of the attack, in [0, 1] pixels")
        self.models = QListWidget()
        self.models.setMaximumHeight(64)
        self.models.setToolTip("built-in models drawn on the same plane, beside "
                               "the current model")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("directions", self.directions)
        form.addRow("grid", self.grid)
        form.addRow("eps", self.eps)
        form.addRow("also show", self.models)

    def set_builtins(self, names: Sequence[str], exclude: str = "") -> None:
        checked = set(self.extra_models())
        self.models.clear()
        for name in names:
            if name == exclude:
                continue
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in checked
                               else Qt.CheckState.Unchecked)
            self.models.addItem(item)

    def check_models(self, names: Sequence[str]) -> None:
        for i in range(self.models.count()):
            item = self.models.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names
                               else Qt.CheckState.Unchecked)

    def extra_models(self) -> list[str]:
        return [self.models.item(i).text() for i in range(self.models.count())
                if self.models.item(i).checkState() == Qt.CheckState.Checked]

    def values(self) -> dict[str, Any]:
        return {"directions": tuple(self.directions.currentData()),
                "grid": self.grid.value(), "eps": round(self.eps.value(), 6)}
