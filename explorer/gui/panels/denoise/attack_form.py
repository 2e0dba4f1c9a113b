"""Noise model and level, ObsAtk budget (RMS k/255 and rho) and steps.

Besides the synthetic noise models the noise choice offers ``REAL``: the
observation is then a user's real noisy image (chosen in RealImageBox), and
there is no level to set."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QWidget,
)

from explorer.core.denoise import noise, rms_to_rho

HALF_STEPS = 32  # the slider moves in halves of 1/255: 0 … 16/255 RMS
DEFAULT_LEVELS = {"gaussian": 0.1, "poisson": 30.0, "salt-pepper": 0.05}
REAL = "real image (file)…"


def rms_text(rms: float, shape: tuple[int, ...] | None) -> str:
    """'RMS 4/255 · ρ = 0.44' (rho for images of ``shape``)."""
    k = rms * 255
    text = f"RMS {k:.3g}/255"
    if shape:
        text += f" · ρ = {rms_to_rho(rms, shape):.3g}"
    return text


class DenoiseForm(QWidget):
    """The budget is chosen as an RMS per pixel (k/255) and shown as the l2
    norm rho too, since rho depends on the image size."""

    rms_changed = Signal(float)
    kind_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shape: tuple[int, ...] | None = None
        self.kind = QComboBox()
        for name in noise.names():
            self.kind.addItem(name)
        self.kind.addItem(REAL)
        self.kind.setToolTip("noise model of the observations, or a real noisy "
                             "image from a file")
        self.level = QDoubleSpinBox()
        self.level.setDecimals(3)
        self.kind.currentTextChanged.connect(self._on_kind)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, HALF_STEPS)
        self.slider.setValue(8)  # 4/255
        self.slider.setToolTip("ObsAtk budget: RMS per pixel of the zero-mean "
                               "perturbation (its l2 norm is rho)")
        self.slider.valueChanged.connect(self._on_slider)
        self.budget = QLabel()
        self.budget.setMinimumWidth(150)
        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(20)
        self.steps.setToolTip("projected gradient steps of ObsAtk")
        budget_row = QHBoxLayout()
        budget_row.addWidget(self.slider, 1)
        budget_row.addWidget(self.budget)
        self.level_label = QLabel("sigma")
        self.layout_form = form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("noise", self.kind)
        form.addRow(self.level_label, self.level)
        form.addRow("budget", budget_row)
        form.addRow("steps", self.steps)
        self._on_kind(self.kind.currentText())
        self._on_slider(self.slider.value())

    @Slot(str)
    def _on_kind(self, kind: str) -> None:
        self.layout_form.setRowVisible(self.level, kind != REAL)
        if kind != REAL:
            self._set_level_range(kind)
        self.kind_changed.emit(kind)

    def _set_level_range(self, kind: str) -> None:
        name, lo, hi, help_text = noise.KINDS[kind]
        self.level_label.setText(name)
        self.level.setRange(lo, hi)
        self.level.setSingleStep(0.01 if hi <= 1 else 1.0)
        self.level.setValue(DEFAULT_LEVELS.get(kind, lo))
        self.level.setToolTip(help_text)

    @Slot(int)
    def _on_slider(self, _value: int) -> None:
        self.budget.setText(rms_text(self.rms(), self.shape))
        self.rms_changed.emit(self.rms())

    def set_shape(self, shape: tuple[int, ...] | None) -> None:
        """The images' C×H×W, for rho."""
        self.shape = tuple(shape) if shape else None
        self._on_slider(self.slider.value())

    def is_real(self) -> bool:
        return self.kind.currentText() == REAL

    def rms(self) -> float:
        return self.slider.value() / 2 / 255

    def set_rms(self, rms: float) -> None:
        self.slider.setValue(round(rms * 255 * 2))

    def rho(self) -> float:
        return rms_to_rho(self.rms(), self.shape) if self.shape else 0.0

    def values(self) -> dict:
        """kind, level (checked against the noise model's range), rho, steps;
        for a real image only rms and steps (rho follows its size)."""
        kind = self.kind.currentText()
        if kind == REAL:
            return {"rms": self.rms(), "steps": self.steps.value()}
        level = noise.check(kind, self.level.value())
        return {"kind": kind, "level": level, "rho": self.rho(),
                "steps": self.steps.value()}

    def choose(self, kind: str, level: float, rms: float, steps: int) -> None:
        self.kind.setCurrentText(kind)
        self.level.setValue(level)
        self.set_rms(rms)
        self.steps.setValue(steps)
