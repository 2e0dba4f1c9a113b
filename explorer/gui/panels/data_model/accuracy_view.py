"""Clean accuracy at a glance: headline, per-class bars, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from explorer.gui.widgets.plots import BarChart, HeatMap


class AccuracyView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.headline = QLabel("Clean accuracy: —")
        self.headline.setObjectName("headline")
        self.headline.setStyleSheet("font-size: 16px; font-weight: 600;")
        self.headline.setWordWrap(True)
        self.bars = BarChart("Per-class accuracy", "accuracy (%)")
        self.confusion = HeatMap(
            "Confusion matrix (counts)", "predicted class", "true class"
        )
        row = QHBoxLayout()
        row.addWidget(self.bars, 1)
        row.addWidget(self.confusion, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.headline)
        box.addLayout(row, 1)
        self.result: dict[str, Any] | None = None

    def clear(self, text: str = "Clean accuracy: —") -> None:
        self.result = None
        self.headline.setText(text)
        self.bars.set_values([], [])
        self.confusion.set_matrix(np.zeros((0, 0)), [])

    def show_result(self, result: dict[str, Any], context: str = "") -> None:
        self.result = result
        classes = result.get("classes") or [
            str(i) for i in range(len(result["per_class_acc"]))
        ]
        acc = 100 * result["clean_acc"]
        extra = f" — {context}" if context else ""
        self.headline.setText(
            f"Clean accuracy: {acc:.1f}% on {result['n']} images"
            f" ({result['seconds']:.1f} s){extra}"
        )
        per_class = [100 * a for a in result["per_class_acc"]]
        labels = [f"{name} {v:.0f}%" for name, v in zip(classes, per_class,
                                                         strict=False)]
        self.bars.set_values(per_class, labels)
        self.confusion.set_matrix(np.asarray(result["confusion"]), classes)
