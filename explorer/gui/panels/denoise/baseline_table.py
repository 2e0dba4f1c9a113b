"""Mean PSNR per denoiser: noisy, denoised, under the random zero-mean
perturbation of the same norm, and under ObsAtk; then how much of each
direction passes through the denoiser (the reason for the gap)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
)

COLUMNS = ("mean PSNR (dB)", "noisy", "denoised", "random d", "ObsAtk d",
           "pass-through")
TIPS = ("averaged over the chosen images", "the noisy observation v",
        "f(v)", "f(v + d), d random with zero mean and the same norm as ObsAtk's",
        "f(v + d), d found by ObsAtk",
        "ObsAtk d / random d: how much of a small step along ObsAtk's direction, "
        "and along a random "
        "zero-mean one, reaches the output: 1 = passed through as if it were "
        "image content, 0 = removed like noise")
KEYS = ("psnr_noisy", "psnr_denoised", "psnr_random", "psnr_attacked")


def _mean_db(values) -> str:
    if values is None:
        return "—"  # not computed (no clean image to compare with)
    v = np.minimum(np.asarray(values, dtype=float), 100.0)
    return f"{v.mean():.2f}" if v.size else "–"


def _gains(attacked, random) -> str:
    if attacked is None or random is None:
        return "—"
    return f"{np.mean(attacked):.2f} / {np.mean(random):.2f}"


class BaselineTable(QTableWidget):
    """Filled from the live job's results (PSNR averaged over the chosen
    images): the gap between the last two columns is what the attack adds
    beyond random noise of its size."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(TIPS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.set_results({})

    def set_results(self, results: dict[str, dict], missing_tip: str = "") -> None:
        """``missing_tip`` explains the cells of scores a result lacks."""
        self.setRowCount(len(results))
        rows = max(len(results), 1)
        self.setFixedHeight(self.horizontalHeader().height() + 4 +
                            rows * self.verticalHeader().defaultSectionSize())
        for row, (name, res) in enumerate(results.items()):
            cells = [name] + [_mean_db(res.get(key)) for key in KEYS] + [
                _gains(res.get("gain_attacked"), res.get("gain_random"))]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if text == "—":
                    item.setToolTip(missing_tip)
                self.setItem(row, col, item)

    def cell_text(self, row: int, col: int) -> str:
        item = self.item(row, col)
        return item.text() if item is not None else ""
