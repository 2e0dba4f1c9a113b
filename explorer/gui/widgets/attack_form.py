"""Choose an attack and its parameters; an eps slider in 1/255 steps."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from explorer.core import attacks
from explorer.core.params import ParamError
from explorer.gui.widgets.param_form import ParamForm

SLIDER_MAX = 64  # 64/255 ≈ 0.25: beyond any usual l-inf budget


def eps_text(eps: float) -> str:
    """``"eps = 0.0314 = 8/255"``; the k/255 part only when it is exact enough."""
    k = eps * 255
    whole = f" = {round(k)}/255" if abs(k - round(k)) < 1e-3 else f" ≈ {k:.1f}/255"
    return f"eps = {eps:.4f}{whole}"


class AttackForm(QWidget):
    """The attack combo (from the registry, so new attacks appear by themselves),
    its description, a :class:`ParamForm` from ``spec(name)`` and an eps slider
    kept in step with the form. Last choices per attack live in settings."""

    attack_changed = Signal(str)
    values_changed = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.combo = QComboBox()
        for name in attacks.names():
            cls = attacks.attack_class(name)
            self.combo.addItem(cls.title, name)
            self.combo.setItemData(self.combo.count() - 1, cls.description,
                                   Qt.ItemDataRole.ToolTipRole)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: #444; font-size: 11px;")
        self.form = ParamForm()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_MAX)
        self.slider.setPageStep(4)
        self.slider.setToolTip("budget in steps of 1/255")
        self.eps_label = QLabel()
        self.eps_row = QWidget()
        er = QHBoxLayout(self.eps_row)
        er.setContentsMargins(0, 0, 0, 0)
        er.addWidget(self.slider, 1)
        er.addWidget(self.eps_label)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.combo)
        box.addWidget(self.description)
        box.addWidget(self.eps_row)
        box.addWidget(self.form)
        self.combo.currentIndexChanged.connect(self._on_attack)
        self.form.values_changed.connect(self._on_form)
        self.slider.valueChanged.connect(self._on_slider)
        last = str(settings.value("attack/name", "pgd"))
        index = self.combo.findData(last)
        self.combo.setCurrentIndex(max(index, 0))
        if index <= 0:
            self._on_attack()

    # -- public ---------------------------------------------------------------
    def name(self) -> str:
        return str(self.combo.currentData())

    def values(self) -> dict[str, Any]:
        """The form's values (raises ParamError for an unreadable field)."""
        return self.form.values()

    def choose(self, name: str, values: dict[str, Any] | None = None) -> None:
        self.combo.setCurrentIndex(self.combo.findData(name))
        if values:
            self.form.set_values(values)
            self._on_form({})

    def eps(self) -> float | None:
        editor = self._eps_editor()
        return None if editor is None else editor.value()

    def set_eps(self, eps: float) -> None:
        editor = self._eps_editor()
        if editor is not None:
            editor.setValue(eps)  # the form's signal moves the slider

    # -- reactions ------------------------------------------------------------
    def _eps_editor(self) -> QDoubleSpinBox | None:
        try:
            editor = self.form.editor("eps")
        except KeyError:
            return None
        return editor if isinstance(editor, QDoubleSpinBox) else None

    @Slot()
    def _on_attack(self) -> None:
        name = self.name()
        cls = attacks.attack_class(name)
        self.description.setText(f"{cls.description} ({cls.kind})")
        self.form.blockSignals(True)
        self.form.set_params(attacks.spec(name))
        saved = self.settings.value(f"attack/params/{name}", "")
        if saved:
            try:
                self.form.set_values(json.loads(str(saved)))
            except (ValueError, TypeError):
                pass  # stale or hand-edited settings: keep the defaults
        self.form.blockSignals(False)
        self.eps_row.setVisible(self._eps_editor() is not None)
        self._sync_slider()
        self.settings.setValue("attack/name", name)
        self.attack_changed.emit(name)

    @Slot(dict)
    def _on_form(self, _values: dict) -> None:
        self._sync_slider()
        try:
            values = self.form.values()
        except ParamError:
            return
        self.settings.setValue(f"attack/params/{self.name()}", json.dumps(values))
        self.values_changed.emit()

    @Slot(int)
    def _on_slider(self, k: int) -> None:
        editor = self._eps_editor()
        if editor is not None and round(editor.value() * 255) != k:
            editor.setValue(k / 255)

    def _sync_slider(self) -> None:
        eps = self.eps()
        if eps is None:
            return
        self.slider.blockSignals(True)
        self.slider.setValue(min(SLIDER_MAX, round(eps * 255)))
        self.slider.blockSignals(False)
        beyond = " (beyond the slider)" if eps * 255 > SLIDER_MAX + 0.5 else ""
        self.eps_label.setText(eps_text(eps) + beyond)
