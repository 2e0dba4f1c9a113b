"""The choices of a training run: architecture, defense, optimisation, eval."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from explorer.core import defenses, models
from explorer.core.models import registry as model_registry
from explorer.core.params import Param
from explorer.core.training.augment import AUGMENT
from explorer.gui.widgets.param_form import ParamForm

GENERAL = (
    Param("epochs", int, 10, "passes over the training set", 1, 1000),
    Param("batch_size", int, 128, "images per update", 1, 4096, label="batch size"),
    Param("optimizer", str, "sgd", "update rule", choices=("sgd", "adam")),
    Param("lr", float, 0.0, "learning rate; 0 = default (sgd 0.1, adam 0.001)",
          0.0, 10.0, label="learning rate"),
    Param("schedule", str, "piecewise", "learning-rate schedule",
          choices=("piecewise", "cosine", "cyclic", "constant")),
    Param("seed", int, 0, "random seed (same seed, same run)", 0, 2**31 - 1),
    AUGMENT,
    Param("eval_eps", float, 0.1, "l-inf budget of the per-epoch PGD evaluation",
          0.0, 1.0, unit="px", label="eval eps"),
    Param("eval_steps", int, 10, "PGD steps of the per-epoch evaluation", 1, 1000,
          label="eval steps"),
    Param("eval_n", int, 500, "evaluate on the first N test images", 1, 100000,
          label="eval images"),
)


class TrainingForm(QWidget):
    """Architecture and defense combos with their parameter forms, then the
    general settings. :meth:`config` raises ``ParamError`` on a bad value."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.arch_combo = QComboBox()
        self.arch_combo.addItems(models.names())
        self.arch_form = ParamForm()
        self.defense_combo = QComboBox()
        for name in defenses.names():
            self.defense_combo.addItem(defenses.defense_class(name).title, name)
        # Long defense titles must not widen the fixed-width form column; the
        # open list still shows them whole.
        self.defense_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.defense_combo.setMinimumContentsLength(16)
        view = self.defense_combo.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 24)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: #555;")
        self.defense_form = ParamForm()
        self.general = ParamForm(GENERAL)
        self.general.editor("lr").setSpecialValueText("default")

        model_box = QGroupBox("Model")
        mb = QFormLayout(model_box)
        mb.addRow("architecture", self.arch_combo)
        mb.addRow(self.arch_form)
        defense_box = QGroupBox("Defense")
        db = QVBoxLayout(defense_box)
        db.addWidget(self.defense_combo)
        db.addWidget(self.description)
        db.addWidget(self.defense_form)
        general_box = QGroupBox("Training")
        QVBoxLayout(general_box).addWidget(self.general)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        for box in (model_box, defense_box, general_box):
            column.addWidget(box)
        column.addStretch(1)
        self.arch_combo.currentTextChanged.connect(self._on_arch)
        self.defense_combo.currentIndexChanged.connect(self._on_defense)
        self._on_arch(self.arch_combo.currentText())
        self._on_defense()

    @Slot(str)
    def _on_arch(self, arch: str) -> None:
        self.arch_form.set_params(models.spec(arch))
        self.arch_combo.setToolTip(model_registry.description(arch))

    @Slot()
    def _on_defense(self) -> None:
        name = self.defense()
        self.defense_form.set_params(defenses.spec(name))
        self.description.setText(defenses.defense_class(name).description)

    def arch(self) -> str:
        return self.arch_combo.currentText()

    def defense(self) -> str:
        return str(self.defense_combo.currentData())

    def choose(self, arch: str, arch_params: dict[str, Any], defense: str,
               params: dict[str, Any], general: dict[str, Any]) -> None:
        """Set every choice (the demo and tests use this)."""
        self.arch_combo.setCurrentText(arch)
        self.arch_form.set_values(arch_params)
        self.defense_combo.setCurrentIndex(self.defense_combo.findData(defense))
        self.defense_form.set_values(params)
        self.general.set_values(general)

    def config(self) -> defenses.TrainingConfig:
        """The run's configuration (the panel fills in the data set)."""
        general = self.general.values()
        arch_params = model_registry.validate_params(self.arch(),
                                                     self.arch_form.values())
        params = defenses.create(self.defense(), **self.defense_form.values()).cfg
        return defenses.TrainingConfig(
            arch=self.arch(), arch_params=arch_params, defense=self.defense(),
            params=params, epochs=general["epochs"],
            batch_size=general["batch_size"], optimizer=general["optimizer"],
            lr=general["lr"] or None, schedule=general["schedule"],
            seed=general["seed"], augment=general["augment"],
            eval_eps=general["eval_eps"],
            eval_steps=general["eval_steps"], eval_n=general["eval_n"])

