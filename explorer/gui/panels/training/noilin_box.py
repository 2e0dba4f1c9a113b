"""The Training page's NoiLIn switch: a checkbox that wraps the chosen
(adversarial) defense in NoiLIn, with the wrapper's rate, growth and
rate_max; disabled, with the reason as its tooltip, for other methods."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QVBoxLayout, QWidget

from explorer.core import defenses
from explorer.core.defenses.noilin import WRAPPER_PARAMS
from explorer.gui.widgets.param_form import ParamForm

TIP = ("NoiLIn (Zhang et al. 2022): flip this share of the training labels; the "
       "share grows whenever validation robust accuracy drops")


class NoiLInBox(QWidget):
    """:meth:`set_defense` follows the defense combo; :meth:`values` is what
    ``TrainingConfig.noilin`` gets (None when off or not applicable)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.check = QCheckBox("NoiLIn (noisy labels)")
        self.form = ParamForm(WRAPPER_PARAMS)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(self.form)
        self.check.toggled.connect(self._sync)
        self._applies = True
        self._sync()

    def set_defense(self, name: str) -> None:
        self._applies = name in defenses.adversarial_names()
        self.check.setEnabled(self._applies)
        self.check.setToolTip(TIP if self._applies else
                              f"NoiLIn wraps adversarial-training methods only, "
                              f"not {name}")
        self._sync()

    def _sync(self) -> None:
        self.form.setVisible(self._applies and self.check.isChecked())

    def values(self) -> dict[str, Any] | None:
        if not (self._applies and self.check.isChecked()):
            return None
        return self.form.values()

    def set_values(self, noilin: dict[str, Any] | None) -> None:
        self.check.setChecked(noilin is not None)
        if noilin:
            self.form.set_values(noilin)
