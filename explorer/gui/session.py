"""Shared choices of the whole window: data set, model, device.

Panels subscribe to these signals and never call each other (napari's rule).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from PySide6.QtCore import QObject, Signal

from explorer.core import accel
from explorer.core import device as devices


@dataclass(frozen=True)
class ModelInfo:
    """What the pages say about the session's model (the current-model strip).

    ``name`` and ``arch`` follow every :meth:`Session.set_model`; the clean
    accuracy and the guardrail findings are added by whoever measures them
    (the Data & Model page) and are dropped when the model or data changes.
    """

    name: str = ""  # the model's source, as the session names it
    arch: str = ""  # the architecture's class name (of the model inside a wrapper)
    clean_acc: float | None = None  # on the session's data; None: not measured
    measuring: bool = False  # a clean-accuracy run is under way
    warnings: tuple[str, ...] = ()  # guardrail codes ("softmax", "near chance")
    warnings_tip: str = ""  # what each one means and its fix


def architecture(model: torch.nn.Module) -> str:
    """The class name of the network itself: a wrapped model's inner one,
    a TorchScript module's original class."""
    inner = model
    if getattr(model, "wrapper", None) is not None:
        inner = next((m for m in model.modules()
                      if m is not model and hasattr(m, "meta")), model)
    return str(getattr(inner, "original_name", "") or type(inner).__name__)


class Session(QObject):
    data_changed = Signal()
    model_changed = Signal()
    model_info_changed = Signal()
    device_changed = Signal()

    def __init__(self, device: torch.device | None = None, parent=None) -> None:
        super().__init__(parent)
        self.dataset: Any = None
        self.data_name = ""
        self.split = ""
        self.model: torch.nn.Module | None = None
        self.model_source = ""
        self.model_info = ModelInfo()
        self.device = device or devices.pick("auto")

    @property
    def data_info(self):
        return getattr(self.dataset, "info", None)

    def set_data(self, dataset: Any, name: str, split: str) -> None:
        self.dataset, self.data_name, self.split = dataset, name, split
        # a clean accuracy was measured on the previous data
        self._set_info(replace(self.model_info, clean_acc=None, measuring=False))
        self.data_changed.emit()

    def set_model(self, model: torch.nn.Module | None, source: str) -> None:
        if model is not None:
            model = accel.place(model, self.device).eval()
        self.model, self.model_source = model, source
        self._set_info(ModelInfo(source, architecture(model))
                       if model is not None else ModelInfo())
        self.model_changed.emit()

    def set_clean_accuracy(self, model: torch.nn.Module | None, dataset: Any,
                           acc: float | None, *, measuring: bool = False) -> None:
        """The clean accuracy of ``model`` on ``dataset`` (None: not known,
        ``measuring``: a run started); ignored unless both are still the
        session's, so a late result never labels another model."""
        if model is None or model is not self.model or dataset is not self.dataset:
            return
        self._set_info(replace(self.model_info, clean_acc=acc, measuring=measuring))

    def set_model_warnings(self, model: torch.nn.Module | None,
                           codes: tuple[str, ...], tip: str = "") -> None:
        """The guardrails' findings about ``model`` (ignored unless it is the
        session's)."""
        if model is None or model is not self.model:
            return
        self._set_info(replace(self.model_info, warnings=tuple(codes),
                               warnings_tip=tip))

    def _set_info(self, info: ModelInfo) -> None:
        if info != self.model_info:
            self.model_info = info
            self.model_info_changed.emit()

    def set_device(self, device: torch.device) -> None:
        if device == self.device:
            return
        self.device = device
        if self.model is not None:
            self.model = accel.place(self.model, device)
        self.device_changed.emit()
