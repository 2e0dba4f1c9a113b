"""The choices of a denoiser training run: method, noise, HAT, architecture.

The defaults are a quick demo: about 280 Adam steps on 1,500 images, some 20-30
s on one CPU core, ending about 6 dB above the noisy input (sigma 0.1). A run
of a few dozen steps (600 images in batches of 64, 3 epochs) barely gets past
the noisy input: Adam at lr 1e-3 needs a few hundred steps here."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QVBoxLayout, QWidget

from explorer.core import denoise
from explorer.core.denoise import noise
from explorer.core.params import Param
from explorer.gui.widgets.param_form import ParamForm

METHOD = (
    Param("method", str, "hat", "standard: the plain denoising loss; hat: hybrid "
          "adversarial training, mixing in the loss on ObsAtk-perturbed "
          "observations", choices=("standard", "hat")),
    Param("noise", str, "gaussian", "noise model of the observations",
          choices=tuple(noise.names())),
    Param("level", float, 0.1, "noise level: sigma (gaussian), peak (poisson) "
          "or amount (salt-pepper)", 0.0, 1e4, label="sigma / level"),
    Param("hat_weight", float, 1.0, "HAT: weight w of the loss on perturbed "
          "observations, (L(f(v)) + w·L(f(v + d))) / (1 + w)", 0.0, 100.0,
          label="HAT weight"),
    Param("rms", float, 4 / 255, "ObsAtk budget for HAT and the per-epoch test, "
          "as RMS per pixel (rho = RMS·sqrt(C·H·W))", 0.0, 16 / 255, unit="px",
          label="ObsAtk RMS"),
    Param("attack_steps", int, 2, "HAT: ObsAtk steps per batch", 1, 100,
          label="HAT steps"),
)
GENERAL = (
    Param("epochs", int, 3, "passes over the training images", 1, 1000),
    Param("batch_size", int, 16, "images per update (small batches: more updates "
          "per second of training)", 1, 4096, label="batch size"),
    Param("lr", float, 1e-3, "Adam's learning rate (cosine schedule)", 1e-6, 1.0,
          label="learning rate"),
    Param("limit_train", int, 1500, "train on the first N images of the train "
          "split (0 = all)", 0, 10_000_000, label="train images"),
    Param("eval_n", int, 100, "test PSNR on the first N test images", 1, 100_000,
          label="eval images"),
    Param("eval_steps", int, 5, "ObsAtk steps of the per-epoch test", 1, 1000,
          label="eval steps"),
)


# smaller than the architectures' defaults, so the default run is quick
ARCH_DEFAULTS = {"dncnn": {"depth": 5, "width": 16}, "unet": {"width": 8}}


class DenoiseTrainForm(QWidget):
    """:meth:`config` raises ``ParamError`` naming a bad value."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method_form = ParamForm(METHOD)
        self.method_form.values_changed.connect(self._on_values)
        self.arch_combo = QComboBox()
        self.arch_combo.addItems(denoise.names())
        self.arch_form = ParamForm()
        self.arch_combo.currentTextChanged.connect(self._on_arch)
        self.general_form = ParamForm(GENERAL)
        method_box = QGroupBox("Method")
        QVBoxLayout(method_box).addWidget(self.method_form)
        arch_box = QGroupBox("Denoiser")
        arch_layout = QFormLayout(arch_box)
        arch_layout.addRow("architecture", self.arch_combo)
        arch_layout.addRow(self.arch_form)
        general_box = QGroupBox("Training")
        QVBoxLayout(general_box).addWidget(self.general_form)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        for box in (method_box, arch_box, general_box):
            column.addWidget(box)
        column.addStretch(1)
        self._on_arch(self.arch_combo.currentText())
        self._on_values()

    @Slot(str)
    def _on_arch(self, arch: str) -> None:
        self.arch_form.set_params(denoise.spec(arch))
        self.arch_form.set_values(ARCH_DEFAULTS.get(arch, {}))

    @Slot()
    def _on_values(self) -> None:
        hat = self.method_form.values()["method"] == "hat"
        for name in ("hat_weight", "attack_steps"):
            self.method_form.editor(name).setEnabled(hat)

    def choose(self, arch: str, arch_params: dict[str, Any],
               values: dict[str, Any]) -> None:
        self.arch_combo.setCurrentText(arch)
        self.arch_form.set_values(arch_params)
        self.method_form.set_values(values)
        self.general_form.set_values(values)

    def config(self, shape: tuple[int, ...]) -> dict[str, Any]:
        """The run's config for images of ``shape`` (C×H×W)."""
        method = self.method_form.values()
        general = self.general_form.values()
        level = noise.check(method["noise"], method["level"])
        rho = denoise.rms_to_rho(method["rms"], shape)
        params = {"noise": method["noise"], "level": level,
                  "hat_weight": method["hat_weight"], "rho": rho,
                  "attack_steps": method["attack_steps"]}
        arch = self.arch_combo.currentText()
        return {"method": method["method"], "arch": arch,
                "arch_params": self.arch_form.values(), "params": params,
                "rms": method["rms"], "epochs": general["epochs"],
                "batch_size": general["batch_size"], "lr": general["lr"],
                "limit_train": general["limit_train"] or None,
                "eval_n": general["eval_n"], "eval_steps": general["eval_steps"]}
