"""Original | perturbation | adversarial, each with its top-5 classes."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from explorer.gui.widgets.copy_image import add_copy_action
from explorer.gui.widgets.image_grid import chw_to_hwc
from explorer.gui.widgets.plots import CLASS_COLORS

TOP_K = 5
FOOLED = "#c62828"
HELD = "#2e7d32"


def _image_plot(title: str) -> tuple[pg.GraphicsLayoutWidget, pg.PlotItem]:
    widget = pg.GraphicsLayoutWidget()
    widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    plot = widget.addPlot(title=title)
    plot.hideAxis("left")
    plot.hideAxis("bottom")
    plot.invertY(True)
    plot.setAspectLocked(True)
    plot.setMouseEnabled(x=False, y=False)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    return widget, plot


def top_k_html(
    probs: np.ndarray | None, classes: Sequence[str], mark: int | None = None
) -> str:
    """A small table: class name, a bar and the probability, best first."""
    if probs is None:
        return "<i>top-5: after the run</i>"
    order = np.argsort(probs)[::-1][:TOP_K]
    rows = []
    for k in order:
        p = float(probs[k])
        name = escape(classes[k] if k < len(classes) else str(k))
        bar = "█" * max(1 if p >= 0.005 else 0, round(10 * p))
        weight = "font-weight:600;" if k == mark else ""
        rows.append(
            f"<tr><td style='{weight}'>{name}</td>"
            f"<td style='color:{CLASS_COLORS[0]}'>{bar}</td>"
            f"<td align='right'>{100 * p:5.1f}%</td></tr>"
        )
    return "<table cellspacing='0' cellpadding='1'>" + "".join(rows) + "</table>"


class TripletView(QWidget):
    """Three image plots built once (row-major, fixed levels, y down); the
    perturbation uses a diverging map with symmetric levels and a colour bar
    in pixel units."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        self.plots, self.items = [], []
        for col, title in enumerate(("original", "perturbation", "adversarial")):
            widget, plot = _image_plot(title)
            item = pg.ImageItem(axisOrder="row-major")
            plot.addItem(item)
            grid.addWidget(widget, 0, col)
            grid.setColumnStretch(col, 1)
            self.plots.append(plot)
            self.items.append(item)
        grid.setRowStretch(0, 1)
        self.original, self.perturbation, self.adversarial = self.items
        # Under the images: top-5 | size of the change and the verdict | top-5.
        self.clean_text, self.adv_text = _text(100), _text(100)
        self.size_text, self.verdict = _text(22), _text(26)
        self.verdict.setWordWrap(True)
        middle = QVBoxLayout()
        middle.addWidget(self.size_text)
        middle.addWidget(self.verdict)
        middle.addStretch(1)
        grid.addWidget(self.clean_text, 1, 0)
        grid.addLayout(middle, 1, 1)
        grid.addWidget(self.adv_text, 1, 2)
        self.colorbar = pg.ColorBarItem(
            values=(-0.1, 0.1), colorMap=pg.colormap.get("CET-D1"),
            interactive=False, width=12, label="Δ pixel",
        )
        self.colorbar.setImageItem(self.perturbation, insert_in=self.plots[1])
        self.delta: np.ndarray = np.zeros((0, 0))
        self.shown_adv: np.ndarray = np.zeros((0, 0))
        self.max_delta = 0.0
        self._title = "perturbation"
        add_copy_action(self)

    def clear(self) -> None:
        for item in self.items:
            item.clear()
        for text in (self.clean_text, self.adv_text, self.size_text, self.verdict):
            text.setText("")
        self.delta = self.shown_adv = np.zeros((0, 0))
        self.max_delta = 0.0

    def show_images(self, x: np.ndarray, x_adv: np.ndarray, bound: float) -> None:
        """``x``, ``x_adv`` C×H×W in [0, 1]; ``bound`` sets the perturbation's
        symmetric colour levels (the l-inf budget, or the largest change)."""
        bound = max(float(bound), 1 / 255)
        self.original.setImage(_display(x), autoLevels=False, levels=(0, 1))
        self.adversarial.setImage(_display(x_adv), autoLevels=False, levels=(0, 1))
        delta = x_adv - x
        self.max_delta = float(np.abs(delta).max(initial=0.0))
        # Colour maps need one channel: show the channel mean for RGB.
        self.delta = delta[0] if delta.shape[0] == 1 else delta.mean(0)
        self.shown_adv = x_adv
        self.perturbation.setImage(self.delta, autoLevels=False,
                                   levels=(-bound, bound))
        self.colorbar.setLevels((-bound, bound))
        title = f"perturbation ×{1 / bound:.0f}"
        if title != self._title:  # a new title re-lays out the whole panel
            self._title = title
            self.plots[1].setTitle(title)

    def show_scores(
        self,
        probs_clean: np.ndarray | None,
        probs_adv: np.ndarray | None,
        classes: Sequence[str],
        y: int,
        target: int | None,
        fooled: bool,
    ) -> None:
        """Top-5 under the images; the verdict in red when the attack won."""
        self.clean_text.setText(top_k_html(probs_clean, classes, y))
        self.adv_text.setText(top_k_html(probs_adv, classes, y))
        self.size_text.setText(
            f"max |Δ| = {self.max_delta:.4f} = {255 * self.max_delta:.1f}/255")
        if probs_adv is None:
            self.verdict.setText("")
            return

        def name(k: int) -> str:
            return classes[k] if 0 <= k < len(classes) else str(k)

        pred = int(np.argmax(probs_adv))
        goal = "" if target is None else f" (target: {name(target)})"
        if fooled:
            text, color = f"fooled: {name(y)} → {name(pred)}{goal}", FOOLED
        elif pred == y:
            text, color = f"held: still {name(y)}{goal}", HELD
        else:
            text, color = f"not fooled: {name(y)} → {name(pred)}{goal}", HELD
        self.verdict.setText(
            f"<span style='color:{color}; font-weight:600; font-size:15px'>"
            f"{escape(text)}</span>")


def _text(height: int = 24) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
    # A fixed size: new text at every live step then repaints the label
    # alone instead of re-laying out (and repainting) the whole panel.
    label.setFixedHeight(height)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    return label


def _display(x: np.ndarray) -> np.ndarray:
    img = chw_to_hwc(x)
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img
