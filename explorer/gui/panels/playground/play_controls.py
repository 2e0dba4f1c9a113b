"""Play / Pause / Step / Reset and a speed slider for live training views."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)


class PlayControls(QWidget):
    """Buttons that emit ``play``/``pause``/``step``/``reset``; ``speed`` is
    the number of training updates between two redraws."""

    play = Signal()
    pause = Signal()
    step = Signal()
    reset = Signal()
    speed_changed = Signal(int)

    def __init__(self, speed: int = 5, maximum: int = 50,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for name in ("Play", "Pause", "Step", "Reset"):
            button = QPushButton(name)
            button.clicked.connect(getattr(self, name.lower()))  # signal to signal
            self.buttons[name] = button
            row.addWidget(button)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, maximum)
        self.slider.setValue(speed)
        self.slider.setToolTip("training updates between two redraws (Step does "
                               "this many)")
        self.label = QLabel()
        self.slider.valueChanged.connect(self._on_slider)
        speed_row = QHBoxLayout()
        speed_row.addWidget(QLabel("speed"))
        speed_row.addWidget(self.slider, 1)
        speed_row.addWidget(self.label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addLayout(speed_row)
        self._show_speed(speed)

    def speed(self) -> int:
        return self.slider.value()

    def set_state(self, ready: bool, playing: bool) -> None:
        self.buttons["Play"].setEnabled(ready and not playing)
        self.buttons["Pause"].setEnabled(playing)
        self.buttons["Step"].setEnabled(ready and not playing)
        self.buttons["Reset"].setEnabled(ready)

    @Slot(int)
    def _on_slider(self, value: int) -> None:
        self._show_speed(value)
        self.speed_changed.emit(value)

    def _show_speed(self, value: int) -> None:
        self.label.setText(f"{value} step{'s' if value > 1 else ''}/redraw")
