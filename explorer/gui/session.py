"""Shared choices of the whole window: data set, model, device.

Panels subscribe to these signals and never call each other (napari's rule).
"""

from __future__ import annotations

from typing import Any

import torch
from PySide6.QtCore import QObject, Signal

from explorer.core import accel
from explorer.core import device as devices


class Session(QObject):
    data_changed = Signal()
    model_changed = Signal()
    device_changed = Signal()

    def __init__(self, device: torch.device | None = None, parent=None) -> None:
        super().__init__(parent)
        self.dataset: Any = None
        self.data_name = ""
        self.split = ""
        self.model: torch.nn.Module | None = None
        self.model_source = ""
        self.device = device or devices.pick("auto")

    @property
    def data_info(self):
        return getattr(self.dataset, "info", None)

    def set_data(self, dataset: Any, name: str, split: str) -> None:
        self.dataset, self.data_name, self.split = dataset, name, split
        self.data_changed.emit()

    def set_model(self, model: torch.nn.Module | None, source: str) -> None:
        if model is not None:
            model = accel.place(model, self.device).eval()
        self.model, self.model_source = model, source
        self.model_changed.emit()

    def set_device(self, device: torch.device) -> None:
        if device == self.device:
            return
        self.device = device
        if self.model is not None:
            self.model = accel.place(self.model, device)
        self.device_changed.emit()
