"""A strip of the model's current adversarial examples during training.

One column per evaluation image: the clean image over its PGD version, each
captioned "true → predicted", green while the prediction is still right and
red once it is fooled. Fed with the trainer's per-epoch ``adversarial``
Snapshot. The cells are built once with fixed sizes and reused, so a new
epoch never re-lays out the Live tab (a relayout resizes the pyqtgraph plots
above, which costs the UI thread tens of milliseconds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from explorer.core.defenses.evaluation import STRIP_SIZE
from explorer.core.jobs import Snapshot
from explorer.gui.widgets.aspect_image import AspectImage, ElidedLabel, chw_to_hwc
from explorer.gui.widgets.triplet_view import FOOLED, HELD

PICTURE = 48  # px; fits two rows and captions under the curves at 800 px high
COLUMN = 84  # px; 8 columns fit beside the form at 1280 px (tooltip: full text)
WAITING = "Adversarial examples of the model appear here after each epoch."


def class_name(classes: Sequence[str], k: int) -> str:
    return classes[k] if 0 <= k < len(classes) else str(k)


class _Cell:
    """One image and its caption, placed in the strip's grid."""

    def __init__(self, grid: QGridLayout, row: int, column: int) -> None:
        self.picture = AspectImage(PICTURE)  # any image shape, never stretched
        self.picture.setFixedSize(PICTURE, PICTURE)
        self.caption = ElidedLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.caption.font()
        font.setPixelSize(10)
        font.setBold(True)
        self.caption.setFont(font)
        self.caption.setFixedSize(COLUMN, 2 * QFontMetrics(font).lineSpacing() + 2)
        self._color = ""
        grid.addWidget(self.picture, row, column, Qt.AlignmentFlag.AlignHCenter)
        grid.addWidget(self.caption, row + 1, column, Qt.AlignmentFlag.AlignHCenter)

    def show(self, image: np.ndarray, text: str, correct: bool) -> None:
        self.picture.set_image(chw_to_hwc(image))
        # Two lines (true, then "→ predicted") so long class names still fit;
        # each line is elided to the column, the tooltip has the whole text.
        true, _, predicted = text.partition(" → ")
        self.caption.setText(f"{true}\n→ {predicted}")
        self.caption.setToolTip(text)
        self.picture.setToolTip(text)
        color = HELD if correct else FOOLED
        if color != self._color:  # a style sheet change re-polishes the label
            self._color = color
            self.caption.setStyleSheet(f"color: {color};")

    def blank(self) -> None:
        for label in (self.picture, self.caption):
            label.clear()
            label.setToolTip("")


class AdversarialStrip(QWidget):
    """Clean (top) over adversarial (bottom) examples of one epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(WAITING)
        self.title.setStyleSheet("font-weight: 600;")
        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(2)
        self._grid.setVerticalSpacing(0)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self.row_names = (QLabel("clean"), QLabel("PGD"))
        for row, label in zip((0, 2), self.row_names, strict=True):
            label.setStyleSheet("font-size: 10px; color: #555;")
            label.setFixedWidth(44)
            self._grid.addWidget(label, row, 0, Qt.AlignmentFlag.AlignVCenter)
        self._grid.setColumnStretch(99, 1)  # columns stay packed to the left
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 2, 0, 0)
        box.setSpacing(2)
        box.addWidget(self.title)
        box.addLayout(self._grid)
        self._pairs: list[tuple[_Cell, _Cell]] = []
        self._add_columns(STRIP_SIZE)
        self.epoch = 0
        self.captions: list[str] = []  # "true → predicted" under each adversarial
        self.fooled: list[bool] = []

    def _add_columns(self, n: int) -> None:
        while len(self._pairs) < n:
            column = len(self._pairs) + 1
            self._pairs.append((_Cell(self._grid, 0, column),
                                _Cell(self._grid, 2, column)))

    def clear(self) -> None:
        self.epoch = 0
        self.captions, self.fooled = [], []
        self.title.setText(WAITING)
        self.row_names[1].setText("PGD")
        for clean, adv in self._pairs:
            clean.blank()
            adv.blank()

    def show_snapshot(self, snapshot: Snapshot, classes: Sequence[str] = ()) -> None:
        """Show the trainer's ``adversarial`` Snapshot (see the module doc)."""
        a = snapshot.arrays
        labels, pred_clean, pred_adv = (np.asarray(a[k]).astype(int) for k in
                                        ("labels", "pred_clean", "pred_adv"))
        n = len(labels)
        self._add_columns(n)
        self.captions, self.fooled = [], []
        for i, (clean, adv) in enumerate(self._pairs):
            if i >= n:
                clean.blank()
                adv.blank()
                continue
            true = class_name(classes, labels[i])
            clean.show(a["clean"][i], f"{true} → {class_name(classes, pred_clean[i])}",
                       pred_clean[i] == labels[i])
            text = f"{true} → {class_name(classes, pred_adv[i])}"
            adv.show(a["adversarial"][i], text, pred_adv[i] == labels[i])
            self.captions.append(text)
            self.fooled.append(bool(pred_adv[i] != labels[i]))
        self.epoch = snapshot.step
        eps = float(a["eps"]) if "eps" in a else None
        self.row_names[1].setText(f"PGD\nε={eps:.3g}" if eps is not None else "PGD")
        right_clean = int((pred_clean == labels).sum())
        self.title.setText(
            f"Adversarial examples after epoch {snapshot.step} of {snapshot.total}"
            f" — right: {right_clean} of {n} clean, {n - sum(self.fooled)} of {n} "
            "under attack")
