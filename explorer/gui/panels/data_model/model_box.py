"""Model chooser: built-in models, recent files, "Open file…", device."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
)

from explorer.core import device as devices
from explorer.core import models
from explorer.core.defenses.inference_wrap import wrapper_title
from explorer.core.loading import load_model_job
from explorer.gui.context import AppContext

OPEN_FILE = "__open__"
MODEL_FILTER = "Models (*.safetensors *.pt *.pth *.ts *.pt2 *.jit);;All files (*)"
MAX_RECENT = 8


class ModelBox(QGroupBox):
    model_loaded = Signal(dict)

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__("Model", parent)
        self.ctx = ctx
        self._job = None
        self.combo = QComboBox()
        self.arch_combo = QComboBox()
        self.arch_combo.addItem("from file", None)
        for arch in models.names():
            self.arch_combo.addItem(arch, arch)
        self.arch_combo.setToolTip(
            "Architecture to build when a .pt/.pth file holds only weights"
        )
        self.device_combo = QComboBox()
        for name in devices.available():
            self.device_combo.addItem(name, name)
        self.device_combo.setCurrentIndex(
            max(0, self.device_combo.findData(ctx.session.device.type))
        )
        self.info = QLabel("no model")
        self.info.setWordWrap(True)
        self._summary = ""  # the loaded model's description, before any wrapper
        form = QFormLayout(self)
        form.addRow(self.combo)
        form.addRow("Weights-only arch", self.arch_combo)
        form.addRow("Device", self.device_combo)
        form.addRow(self.info)
        self._fill()
        self.combo.activated.connect(self.on_choice)
        self.device_combo.currentIndexChanged.connect(self.on_device)
        ctx.session.model_changed.connect(self._show_wrapper)
        last = str(ctx.settings.value("model/source", "fmnist-cnn-standard"))
        if self.combo.findData(last) >= 0:
            self.combo.setCurrentIndex(self.combo.findData(last))
            self.load(last)

    def _recent(self) -> list[str]:
        value = self.ctx.settings.value("model/recent", [])
        if isinstance(value, str):
            value = [value]
        return [v for v in (value or []) if v]

    def _fill(self) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for name in models.builtin_names():
            self.combo.addItem(f"{name} (built-in)", name)
        for path in self._recent():
            self.combo.addItem(Path(path).name, path)
            self.combo.setItemData(self.combo.count() - 1, path, 3)  # tooltip
        self.combo.addItem("Open file…", OPEN_FILE)
        self.combo.blockSignals(False)

    @Slot(int)
    def on_choice(self, index: int) -> None:
        source = self.combo.itemData(index)
        if source == OPEN_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Open model", "", MODEL_FILTER)
            if path:
                self.open_file(path)
            return
        self.load(source)

    def choose_builtin(self, name: str) -> None:
        self.combo.setCurrentIndex(max(0, self.combo.findData(name)))
        self.load(name)

    def open_file(self, path: str) -> None:
        """Open a weights file (menu, drop, or the combo); remember it."""
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self._recent() if p != path]
        self.ctx.settings.setValue("model/recent", recent[:MAX_RECENT])
        self._fill()
        self.combo.setCurrentIndex(max(0, self.combo.findData(path)))
        self.load(path)

    def load(self, source: str) -> None:
        builtin = source in models.builtin_names()
        self.info.setText(f"loading {Path(source).name}…")
        job = self.ctx.runner.start(
            load_model_job, name="load model", slot="model-box/load",
            job_args=(source,), builtin=builtin, arch=self.arch_combo.currentData(),
        )
        job.done.connect(self._on_loaded)
        job.failed.connect(self._on_failed)
        self._job = job

    @Slot(dict)
    def _on_loaded(self, result: dict) -> None:
        model = result["model"]
        meta = getattr(model, "meta", None)
        self.ctx.settings.setValue("model/source", result["source"])
        self._summary = describe(meta, result["parameters"])
        self.info.setText(self._summary)
        self.info.setStyleSheet("")
        self.ctx.session.set_model(model, Path(result["source"]).name)
        self.model_loaded.emit(result)

    @Slot()
    def _show_wrapper(self) -> None:
        """Say plainly when the session's model is this one inside a wrapper."""
        wrapper = getattr(self.ctx.session.model, "wrapper", None)
        if not self._summary or self.info.text().startswith("loading"):
            return
        if wrapper is None:
            self.info.setText(self._summary)
            return
        self.info.setText(
            f"{self._summary}\nWRAPPED in {wrapper_title(wrapper['name'])}: an "
            "inference-time, randomized defense (gradients through it may be "
            "obfuscated)")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._summary = ""
        self.info.setText(message)
        self.info.setStyleSheet("color: #b00020;")
        self.ctx.session.set_model(None, "")

    @Slot()
    def on_device(self) -> None:
        try:
            device = devices.pick(self.device_combo.currentData())
        except devices.DeviceError as exc:
            self.info.setText(str(exc))
            return
        self.ctx.session.set_device(device)
        self.ctx.settings.setValue("model/device", device.type)


def describe(meta, n_params: int) -> str:
    if meta is None:
        return f"{n_params:,} parameters"
    shape = "×".join(str(d) for d in (meta.in_shape or ())) or "?"
    training = meta.training or {}
    method = training.get("method", "unknown training")
    lines = [
        f"{meta.arch} — {n_params:,} parameters",
        f"input {shape}, {meta.num_classes} classes",
        f"trained on {meta.dataset or 'unknown data'} ({method})",
    ]
    return "\n".join(lines)
