"""The choices of a training run: where the weights start (fresh, or the
session's model: fine-tuning, of every weight or of the classifier head
only), architecture, defense, optimisation, eval and the validation split
the best epoch is chosen on, and speed (mixed precision, torch.compile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from explorer.core import defenses, models
from explorer.core.defenses.run_job import init_source
from explorer.core.models import registry as model_registry
from explorer.core.params import Param, ParamError
from explorer.core.training.augment import AUGMENT
from explorer.core.training.fine_tune import head_of
from explorer.core.training.split import VAL_PARAM
from explorer.gui.panels.training.noilin_box import NoiLInBox
from explorer.gui.widgets.param_form import ParamForm

# The page's defaults are a quick first run that visibly learns: Fast-AT on
# the small CNN, Adam with a cyclic schedule, 8 epochs of 6,000 images scored
# on 200. Measured with `explorer train` on the built-in set (one torch
# thread on 2 CPU cores): 29 s (65 s with the cores shared by other work);
# test clean accuracy 62% -> 84% and PGD-10 robust accuracy 40% -> 64%.
DEFAULT_ARCH, DEFAULT_DEFENSE = "small-cnn", "fast-at"
QUICK = "; the default is a quick first run: raise it for a real one"
GENERAL = (
    Param("epochs", int, 8, f"passes over the training set{QUICK}", 1, 1000),
    Param("batch_size", int, 50, "images per update", 1, 4096, label="batch size"),
    Param("optimizer", str, "adam", "update rule", choices=("sgd", "adam")),
    Param("lr", float, 0.005, "learning rate (the peak of a cyclic schedule); 0 = "
          "default (sgd 0.1, adam 0.001)", 0.0, 10.0, label="learning rate"),
    Param("schedule", str, "cyclic", "learning-rate schedule (cyclic: up, then "
          "down to 0, as Fast-AT trains)",
          choices=("piecewise", "cosine", "cyclic", "constant")),
    Param("seed", int, 0, "random seed (same seed, same run)", 0, 2**31 - 1),
    AUGMENT,
    Param("eval_eps", float, 0.1, "l-inf budget of the per-epoch PGD evaluation",
          0.0, 1.0, unit="px", label="eval eps"),
    Param("eval_steps", int, 10, "PGD steps of the per-epoch evaluation", 1, 1000,
          label="eval steps"),
    Param("eval_n", int, 200, "score each epoch on the first N validation images "
          "(they choose the best epoch) and the first N test images (reported "
          f"beside them, never used to choose){QUICK}", 1, 100000,
          label="eval images"),
    VAL_PARAM,
    Param("train_images", int, 6000, "train on the first N training images only "
          "(the validation split is drawn from them); 0 = all, and so is more "
          "than the set has. Few images show how a method copes with little "
          f"data (GAT's case){QUICK}", 0, 10_000_000,
          label="training images"),
)
QUICK_NOTE = ("The defaults are a quick first run (half a minute to a minute on "
              "two CPU cores). For a real run raise epochs, eval images and "
              "training images (0 = all).")


FRESH, SESSION = "fresh", "session"  # the "start from" choices
START_CHOICES = ((FRESH, "fresh weights"),
                 (SESSION, "the model on the Data & Model page"))
START_TIP = ("fresh weights: a new model of the architecture below; the model on "
             "the Data & Model page: fine-tune it (its file is read again, so it "
             "brings its own architecture)")
FREEZE_CHOICES = (("none", "every weight (full fine-tune)"),
                  ("features", "the classifier head only (linear probe)"))
FREEZE_TIP = ("full fine-tune: every weight trains; linear probe: only the "
              "classifier head trains, the rest keeps its weights and batch-norm "
              "statistics (attacks still go through it)")
AMP_CHOICES = (("off", "off (float32)"), ("bf16", "bf16"),
               ("fp16", "fp16 (CUDA, loss scaling)"))
AMP_TIP = ("mixed precision of the training forward passes (attacks' iterates, "
           "input gradients and projections stay float32; the per-epoch scores "
           "are float32): bf16 on CPUs and recent GPUs, fp16 with loss scaling "
           "on CUDA GPUs only. Speeds up GPUs; on most CPUs bf16 is slower")
COMPILE_TIP = ("compile the model with torch.compile: faster steps after a slow "
               "first batch; where it does not work the run continues "
               "uncompiled and the log says why")
NEW_HEAD_TIP = ("draw the classifier head's weights afresh (from the seed) before "
                "training, so it is learnt from scratch")


class TrainingForm(QWidget):
    """Where the weights start, the architecture and defense combos with their
    parameter forms, then the general settings. :meth:`config` raises
    ``ParamError`` on a bad value. :meth:`set_start_model` tells the form
    which model "the model on the Data & Model page" is."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start_combo = QComboBox()
        for key, text in START_CHOICES:
            self.start_combo.addItem(text, key)
        self._fit_narrow(self.start_combo)
        self._start_model: tuple[str, str | None, Any] | None = None
        self._head_problem: str | None = None  # why the head cannot be found
        self.freeze_combo = QComboBox()  # what a fine-tune trains
        for key, text in FREEZE_CHOICES:
            self.freeze_combo.addItem(text, key)
        self._fit_narrow(self.freeze_combo)
        self.new_head = QCheckBox("re-initialise the classifier head")
        self.arch_combo = QComboBox()
        self.arch_combo.addItems(models.names())
        self.arch_combo.setCurrentText(DEFAULT_ARCH)
        self.arch_form = ParamForm()
        self.defense_combo = QComboBox()
        for name in defenses.names():
            self.defense_combo.addItem(defenses.defense_class(name).title, name)
        self.defense_combo.setCurrentIndex(self.defense_combo.findData(DEFAULT_DEFENSE))
        self._fit_narrow(self.defense_combo)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: #555;")
        self.defense_form = ParamForm()
        self.noilin = NoiLInBox()
        self.general = ParamForm(GENERAL)
        self.general.editor("lr").setSpecialValueText("default")
        self.general.editor("val_fraction").setSingleStep(0.05)
        self.general.editor("train_images").setSpecialValueText("all")
        self.amp_combo = QComboBox()  # mixed precision (training/precision.py)
        for key, text in AMP_CHOICES:
            self.amp_combo.addItem(text, key)
        self.amp_combo.setToolTip(AMP_TIP)
        if not torch.cuda.is_available():
            fp16 = self.amp_combo.findData("fp16")
            self.amp_combo.model().item(fp16).setEnabled(False)
            self.amp_combo.setItemData(fp16, "not available: no CUDA GPU here",
                                       Qt.ItemDataRole.ToolTipRole)
        self.compile_box = QCheckBox("compile the model (torch.compile)")
        self.compile_box.setToolTip(COMPILE_TIP)

        model_box = QGroupBox("Model")
        self.start_note = QLabel()  # what a fine-tune starts from
        self.start_note.setWordWrap(True)
        self.start_note.setStyleSheet("color: #555;")
        mb = self._model_rows = QFormLayout(model_box)
        mb.addRow("start from", self.start_combo)
        mb.addRow(self.start_note)
        mb.addRow("train", self.freeze_combo)
        mb.addRow(self.new_head)
        mb.addRow("architecture", self.arch_combo)
        mb.addRow(self.arch_form)
        defense_box = QGroupBox("Defense")
        db = QVBoxLayout(defense_box)
        db.addWidget(self.defense_combo)
        db.addWidget(self.description)
        db.addWidget(self.defense_form)
        db.addWidget(self.noilin)
        general_box = QGroupBox("Training")
        self.quick_note = QLabel(QUICK_NOTE)
        self.quick_note.setWordWrap(True)
        self.quick_note.setStyleSheet("color: #555;")
        gb = QVBoxLayout(general_box)
        gb.addWidget(self.quick_note)
        gb.addWidget(self.general)
        speed_box = QGroupBox("Speed")
        sb = QFormLayout(speed_box)
        sb.addRow("mixed precision", self.amp_combo)
        sb.addRow(self.compile_box)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        for box in (model_box, defense_box, general_box, speed_box):
            column.addWidget(box)
        column.addStretch(1)
        self.arch_combo.currentTextChanged.connect(self._on_arch)
        self.defense_combo.currentIndexChanged.connect(self._on_defense)
        self.start_combo.currentIndexChanged.connect(self._on_start)
        self._on_arch(self.arch_combo.currentText())
        self._on_defense()
        self.set_start_model(None)

    @staticmethod
    def _fit_narrow(combo: QComboBox) -> None:
        # Long item texts must not widen the fixed-width form column; the
        # open list still shows them whole.
        combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(16)
        view = combo.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 24)

    # -- where the weights start ------------------------------------------------
    def set_start_model(self, model: Any) -> None:
        """The session's model (None: none loaded): "the model on the Data &
        Model page" is offered when training can read it again, else
        disabled with the reason as its tooltip."""
        try:
            if model is None:
                raise ParamError("no model is loaded on the Data & Model page")
            init_from, init_arch = init_source(model)
        except (ParamError, models.ModelError) as exc:
            self._start_model, tip, enabled = None, f"not available: {exc}", False
        else:
            self._start_model = (init_from, init_arch, model.meta)
            try:
                head_of(model, Path(init_from).name, "linear probe or new head")
            except ParamError as exc:
                self._head_problem = str(exc).replace(
                    "use freeze none", "train every weight, without a new head")
            else:
                self._head_problem = None
            tip, enabled = f"fine-tune {init_from} ({model.meta.arch})", True
        self.start_combo.model().item(1).setEnabled(enabled)
        self.start_combo.setItemData(1, tip, Qt.ItemDataRole.ToolTipRole)
        if not enabled and self.start() == SESSION:
            self.start_combo.setCurrentIndex(0)
        self._on_start()

    def start(self) -> str:
        """``"fresh"`` or ``"session"``."""
        return str(self.start_combo.currentData())

    def choose_start(self, start: str) -> None:
        self.start_combo.setCurrentIndex(self.start_combo.findData(start))

    def freeze(self) -> str:
        """``"none"`` (full fine-tune) or ``"features"`` (linear probe)."""
        return str(self.freeze_combo.currentData())

    def choose_freeze(self, freeze: str) -> None:
        self.freeze_combo.setCurrentIndex(self.freeze_combo.findData(freeze))

    @Slot()
    def _on_start(self) -> None:
        fresh = self.start() == FRESH
        # A fine-tuned model brings its own architecture.
        self.arch_combo.setEnabled(fresh)
        self.arch_form.setEnabled(fresh)
        for widget in (self.arch_combo, self.arch_form):
            self._model_rows.setRowVisible(widget, fresh)
        self._model_rows.setRowVisible(self.start_note, not fresh)
        # What a fine-tune trains: only when there is a model to fine-tune.
        why = ("\n\n(fine-tuning only: start from the model on the Data & "
               "Model page)" if fresh else "")
        for widget, tip in ((self.freeze_combo, FREEZE_TIP),
                            (self.new_head, NEW_HEAD_TIP)):
            widget.setEnabled(not fresh)
            widget.setToolTip(tip + why)
        if not fresh and self._start_model is not None:
            init_from, _, meta = self._start_model
            self.start_note.setText(f"training continues from "
                                    f"{Path(init_from).name}, a {meta.arch} "
                                    f"({meta.format}), with its architecture")
        about = str(self.start_combo.itemData(1, Qt.ItemDataRole.ToolTipRole))
        if not fresh:
            self.start_combo.setToolTip(about)
        elif self._start_model is None:  # why the second choice is disabled
            self.start_combo.setToolTip(f"{START_TIP}\n\n{about}")
        else:
            self.start_combo.setToolTip(START_TIP)

    # -- architecture and defense ------------------------------------------------
    @Slot(str)
    def _on_arch(self, arch: str) -> None:
        self.arch_form.set_params(models.spec(arch))
        self.arch_combo.setToolTip(model_registry.description(arch))

    @Slot()
    def _on_defense(self) -> None:
        name = self.defense()
        self.defense_form.set_params(defenses.spec(name))
        self.description.setText(defenses.defense_class(name).description)
        self.noilin.set_defense(name)

    def arch(self) -> str:
        return self.arch_combo.currentText()

    def defense(self) -> str:
        return str(self.defense_combo.currentData())

    def choose(self, arch: str, arch_params: dict[str, Any], defense: str,
               params: dict[str, Any], general: dict[str, Any]) -> None:
        """Set every choice, fresh weights of ``arch`` (the demo and tests
        use this)."""
        self.choose_start(FRESH)
        self.arch_combo.setCurrentText(arch)
        self.arch_form.set_values(arch_params)
        self.defense_combo.setCurrentIndex(self.defense_combo.findData(defense))
        self.defense_form.set_values(params)
        self.general.set_values(general)

    @staticmethod
    def defaults() -> tuple[str, dict[str, Any], str, dict[str, Any], dict[str, Any]]:
        """The page's default choices, as :meth:`choose` takes them: the
        quick first run (see GENERAL)."""
        def of(params) -> dict[str, Any]:
            return {p.name: p.default for p in params}

        return (DEFAULT_ARCH, of(models.spec(DEFAULT_ARCH)), DEFAULT_DEFENSE,
                of(defenses.spec(DEFAULT_DEFENSE)), of(GENERAL))

    def set_config(self, config: defenses.TrainingConfig) -> None:
        """Show ``config`` (a recipe's): fresh weights of its architecture
        (the architecture a fine-tune recorded), defense, NoiLIn, settings."""
        general = {name: getattr(config, name) for name in (
            "epochs", "batch_size", "optimizer", "schedule", "seed", "augment",
            "eval_eps", "eval_steps", "eval_n", "val_fraction")}
        general.update(lr=config.lr or 0.0, train_images=config.limit_train or 0)
        self.choose(config.arch, dict(config.arch_params), config.defense,
                    dict(config.params), general)
        self.noilin.set_values(None if config.noilin is None else dict(config.noilin))
        self.choose_freeze(config.freeze)
        self.new_head.setChecked(config.new_head)
        self.choose_speed(config.amp, config.compile)

    def amp(self) -> str:
        """``"off"``, ``"bf16"`` or ``"fp16"``."""
        return str(self.amp_combo.currentData())

    def choose_speed(self, amp: str, compile: bool = False) -> None:
        self.amp_combo.setCurrentIndex(self.amp_combo.findData(amp))
        self.compile_box.setChecked(compile)

    def config(self) -> defenses.TrainingConfig:
        """The run's configuration (the panel fills in the data set)."""
        general = self.general.values()
        start: dict[str, Any] = {}
        if self.start() == SESSION:
            if self._start_model is None:
                raise ParamError("start from: no model on the Data & Model page "
                                 "can be fine-tuned")
            init_from, init_arch, meta = self._start_model
            freeze, new_head = self.freeze(), self.new_head.isChecked()
            if (freeze != "none" or new_head) and self._head_problem is not None:
                raise ParamError(self._head_problem)
            start = {"init_from": init_from, "init_arch": init_arch,
                     "arch": meta.arch, "arch_params": dict(meta.arch_params),
                     "freeze": freeze, "new_head": new_head}
        else:
            start = {"arch": self.arch(), "arch_params": model_registry.validate_params(
                self.arch(), self.arch_form.values())}
        params = defenses.create(self.defense(), **self.defense_form.values()).cfg
        noilin = self.noilin.values()
        if noilin is not None:  # "rate must be at most rate_max" for the banner
            try:
                noilin = defenses.create_wrapped(self.defense(), params, noilin).cfg
            except ParamError as exc:
                raise ParamError(f"NoiLIn: {exc}") from None
        return defenses.TrainingConfig(
            **start, defense=self.defense(),
            params=params, noilin=noilin, epochs=general["epochs"],
            batch_size=general["batch_size"], optimizer=general["optimizer"],
            lr=general["lr"] or None, schedule=general["schedule"],
            seed=general["seed"], augment=general["augment"],
            eval_eps=general["eval_eps"],
            eval_steps=general["eval_steps"], eval_n=general["eval_n"],
            val_fraction=general["val_fraction"],
            limit_train=general["train_images"] or None,
            amp=self.amp(), compile=self.compile_box.isChecked())

