"""Suite, budget, image count and EOT passes of an evaluation; eps shown as
k/255.

"custom…" swaps the single eps for chosen attacks at chosen budgets
(:class:`~explorer.gui.panels.evaluate.custom_suite_box.CustomSuiteBox`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QWidget,
)

from explorer.core.analysis.compare import SWEEP_ATTACK, default_sweep
from explorer.core.analysis.suites import CUSTOM, SUITES
from explorer.core.attacks.eot import EOT
from explorer.core.params import ParamError
from explorer.gui.panels.evaluate.custom_suite_box import CustomSuiteBox
from explorer.gui.widgets.attack_form import SLIDER_MAX, eps_text

SUITE_HELP = {
    "quick": "APGD-CE, 20 steps (l-inf): a first look in seconds",
    "standard": "APGD-CE, APGD-T and Square, 20 iterations (AutoAttack's "
                "cascade without FAB-T, l-inf): fast",
    "multi": "the standard cascade for l-inf, l2 and l1; union and average",
    "autoattack": "AutoAttack's standard version: APGD-CE, APGD-T, FAB-T and "
                  "Square, 100 iterations (l-inf); the figure to quote beside "
                  "RobustBench and papers",
    CUSTOM: "the checked attacks at each budget; one column per budget",
}


class EvalSettings(QWidget):
    """A small form: suite, eps (slider in 1/255 steps + exact spin box), N,
    EOT passes of every gradient attack (randomized models), and whether to
    sweep eps and run the gradient-masking checks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.suite = QComboBox()
        for name in (*SUITES, CUSTOM):
            self.suite.addItem(name + ("…" if name == CUSTOM else ""), name)
            self.suite.setItemData(self.suite.count() - 1, SUITE_HELP[name],
                                   Qt.ItemDataRole.ToolTipRole)
        self.suite_help = QLabel()
        self.suite_help.setWordWrap(True)
        self.suite_help.setStyleSheet("color: #444; font-size: 11px;")
        self.eps = QDoubleSpinBox()
        self.eps.setDecimals(4)
        self.eps.setRange(0.0, 1.0)
        self.eps.setSingleStep(1 / 255)
        self.eps.setToolTip("l-inf budget in pixel units ([0, 1] images)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_MAX)
        self.slider.setToolTip("budget in steps of 1/255")
        self.eps_label = QLabel()
        self.eps_label.setStyleSheet("font-size: 11px;")
        eps_row = self.eps_row = QWidget()
        er = QHBoxLayout(eps_row)
        er.setContentsMargins(0, 0, 0, 0)
        er.addWidget(self.eps)
        er.addWidget(self.slider, 1)
        self.n = QSpinBox()
        self.n.setRange(1, 100_000)
        self.n.setSingleStep(50)
        self.n.setToolTip("the first N test images are evaluated")
        self.eot = QSpinBox()  # every gradient stage's EOT passes
        self.eot.setRange(int(EOT.minimum), int(EOT.maximum))
        self.eot.setToolTip(f"{EOT.help}; for Mixup Inference or a model adding "
                            "noise. K passes cost K times the time.")
        self.sweep = QCheckBox("accuracy-vs-eps sweep")
        self.checks = QCheckBox("gradient-masking checks")
        self.custom = CustomSuiteBox()
        form = QFormLayout(self)
        self.form = form
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Suite", self.suite)
        form.addRow(self.suite_help)
        form.addRow(self.custom)
        form.addRow("eps", eps_row)
        form.addRow(self.eps_label)
        form.addRow("Images", self.n)
        form.addRow(EOT.label, self.eot)
        form.addRow(self.sweep)
        form.addRow(self.checks)
        self.suite.currentIndexChanged.connect(self._on_suite)
        self.eps.valueChanged.connect(self._on_eps)
        self.slider.valueChanged.connect(self._on_slider)
        self.set_values({"suite": "quick", "eps": 0.1, "n": 200, "sweep": True,
                         "checks": True, "eot": 1})

    def values(self) -> dict[str, Any]:
        return {"suite": str(self.suite.currentData()), "eps": self.eps.value(),
                "n": self.n.value(), "eot": self.eot.value(),
                "sweep": self.sweep.isChecked(),
                "checks": self.checks.isChecked(), **self.custom.values()}

    def job_settings(self) -> dict[str, Any]:
        """:meth:`values` for a run: ``custom`` holds the custom suite's
        attacks and budgets (empty otherwise) and ``eps``, used by the masking
        checks, is then the largest budget; ``curve_eps`` are the budgets of the
        accuracy-vs-eps curve when no other sweep is asked for, ``curve_title``
        its title. Raises
        ParamError on bad entries."""
        values = self.values()
        del values["attacks"], values["budgets"]
        values["custom"] = {}
        values["curve_eps"] = default_sweep(values["eps"])
        values["curve_title"] = f"Accuracy vs eps ({SWEEP_ATTACK.upper()}, l-inf)"
        if values["suite"] == CUSTOM:
            values["custom"] = self.custom.chosen()
            values["curve_eps"] = values["custom"]["budgets"]
            values["curve_title"] = "Accuracy vs eps (all checked attacks, l-inf)"
            values["eps"] = values["curve_eps"][-1]
        return values

    def problem(self) -> str | None:
        """Why :meth:`job_settings` would fail (None when it would not)."""
        try:
            self.job_settings()
        except ParamError as exc:
            return str(exc)
        return None

    def set_values(self, values: dict[str, Any]) -> None:
        if "suite" in values:
            self.suite.setCurrentIndex(max(self.suite.findData(values["suite"]), 0))
        if "eps" in values:
            self.eps.setValue(float(values["eps"]))
        if "n" in values:
            self.n.setValue(int(values["n"]))
        if "eot" in values:
            self.eot.setValue(int(values["eot"]))
        for key in ("sweep", "checks"):
            if key in values:
                getattr(self, key).setChecked(bool(values[key]))
        self.custom.set_values(values)
        self._on_suite()
        self._on_eps(self.eps.value())

    @Slot()
    def _on_suite(self) -> None:
        suite = str(self.suite.currentData())
        self.suite_help.setText(SUITE_HELP[suite])
        # the custom suite takes its budgets from its own field
        self.form.setRowVisible(self.custom, suite == CUSTOM)
        for row in (self.eps_row, self.eps_label):
            self.form.setRowVisible(row, suite != CUSTOM)
        self.sweep.setToolTip("custom: the curve shows the robust accuracy at each "
                              "budget" if suite == CUSTOM else
                              "robust accuracy of APGD-CE around eps")

    @Slot(float)
    def _on_eps(self, eps: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(min(SLIDER_MAX, round(eps * 255)))
        self.slider.blockSignals(False)
        self.eps_label.setText(eps_text(eps))

    @Slot(int)
    def _on_slider(self, k: int) -> None:
        if round(self.eps.value() * 255) != k:
            self.eps.setValue(k / 255)
