"""Model chooser: built-in models, recent files, "Open file…", device."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from explorer.core import device as devices
from explorer.core import models
from explorer.core.defenses.inference_wrap import wrapper_label, wrapper_note
from explorer.core.loading import check_model_job, export_model_job, load_model_job
from explorer.core.models import files as model_files
from explorer.core.models import guardrails, zoo
from explorer.core.models.normalize import parse_values
from explorer.gui.context import AppContext
from explorer.gui.panels.data_model.code_row import CodeRow
from explorer.gui.widgets.job_controls import ERROR_STYLE

OPEN_FILE = "__open__"
CUSTOM = "__custom__"  # the normalisation typed in the mean / std fields
MODEL_FILTER = model_files.FILE_FILTER
MAX_RECENT = 8


def _arch_combo() -> QComboBox:
    """Every architecture a weights-only file can be loaded into, searchable:
    typing any part of a name ("resnet") narrows the list."""
    combo = QComboBox()
    combo.setEditable(True)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    # Long library names must not widen the column and squeeze the label.
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
    combo.addItem("from file", None)
    for arch in models.names():
        combo.addItem(arch, arch)
    for arch in zoo.names("torchvision"):
        combo.addItem(arch, arch)
    completer = QCompleter(combo.model(), combo)
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    combo.setCompleter(completer)
    timm = " or type timm:NAME" if zoo.timm_available() else ""
    combo.setToolTip(
        "Architecture to build when a .pt/.pth/.safetensors file holds only "
        f"weights: the app's own or torchvision's (type to search){timm}"
    )
    return combo


class ModelBox(QGroupBox):
    model_loaded = Signal(dict)

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__("Model", parent)
        self.ctx = ctx
        self._job = None
        self.combo = QComboBox()
        self.arch_combo = _arch_combo()
        self.norm_combo = QComboBox()
        for text, preset in (("from file", None), ("none", "none"),
                             ("ImageNet", "imagenet"), ("CIFAR-10", "cifar10"),
                             ("custom…", CUSTOM)):
            self.norm_combo.addItem(text, preset)
        self.norm_combo.setToolTip(
            "The input normalisation a model file expects (built-in models keep "
            "their own): the model is wrapped with it, so attacks still work in "
            "[0, 1] pixels and eps means what it says. 'from file': what the file "
            "records, none for bare weights; 'custom…': type the mean and std.")
        self.mean_edit, self.std_edit = QLineEdit(), QLineEdit()
        self.mean_edit.setPlaceholderText("mean, e.g. 0.485, 0.456, 0.406")
        self.std_edit.setPlaceholderText("std, e.g. 0.229, 0.224, 0.225")
        for edit in (self.mean_edit, self.std_edit):
            edit.setToolTip("1 or 3 comma-separated numbers, per channel")
        self.custom_norm = QWidget()
        row = QHBoxLayout(self.custom_norm)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.mean_edit)
        row.addWidget(self.std_edit)
        self.custom_norm.setVisible(False)
        self.norm_combo.currentIndexChanged.connect(
            lambda _i: self.custom_norm.setVisible(
                self.norm_combo.currentData() == CUSTOM))
        self.code_row = CodeRow(ctx.settings)
        self.code_row.changed.connect(self._reload_file)
        self.code_row.problem.connect(self.say_problem)
        self.device_combo = QComboBox()
        for name in devices.available():
            self.device_combo.addItem(name, name)
        self.device_combo.setCurrentIndex(
            max(0, self.device_combo.findData(ctx.session.device.type))
        )
        self.info = QLabel("no model")
        self.info.setWordWrap(True)
        # what stopped a choice (a bad mean, a code file that is not Python);
        # the loaded model stays loaded
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.setVisible(False)
        # Guardrails (softmax, random output, train mode, near chance): a badge
        # with the measurement and the fix in its tooltip.
        self.badge = QLabel()
        self.badge.setWordWrap(True)
        self.badge.setStyleSheet(
            "background: #fff3cd; color: #664d03; border: 1px solid #ffda6a; "
            "border-radius: 3px; padding: 2px 4px;")
        self.badge.setVisible(False)
        self._warnings: list = []  # ModelWarning from the load
        self._wrapper_warnings: list = []  # ... of the model in its wrapper
        self._accuracy_warning = None
        self._summary = ""  # the loaded model's description, before any wrapper
        self._model = None  # the loaded model, before any wrapper
        self.export_button = QPushButton("Export .pt2…")
        self.export_button.setEnabled(False)
        self.export_button.setToolTip(
            "Write this model as a torch.export program (.pt2): it loads "
            "wherever PyTorch runs, without this app's code")
        self.export_button.clicked.connect(self.choose_export)
        self.export_status = QLabel()
        self.export_status.setWordWrap(True)
        self.export_status.setVisible(False)  # only once there is something to say
        self._export_job = None
        form = QFormLayout(self)
        form.addRow(self.combo)
        form.addRow("Weights-only arch", self.arch_combo)
        form.addRow(self.code_row)
        form.addRow("Normalisation", self.norm_combo)
        form.addRow(self.custom_norm)
        form.addRow("Device", self.device_combo)
        form.addRow(self.info)
        form.addRow(self.problem)
        form.addRow(self.badge)
        form.addRow(self.export_button)
        form.addRow(self.export_status)
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

    def arch(self) -> str | None:
        """The weights-only architecture chosen or typed (None: from the file)."""
        text = self.arch_combo.currentText().strip()
        index = self.arch_combo.findText(text)
        if index >= 0:
            return self.arch_combo.itemData(index)
        return text or None  # typed, e.g. timm:NAME: the loader names what is wrong

    def open_file(self, path: str) -> None:
        """Open a weights file (menu, drop, or the combo); remember it."""
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self._recent() if p != path]
        self.ctx.settings.setValue("model/recent", recent[:MAX_RECENT])
        self._fill()
        self.combo.setCurrentIndex(max(0, self.combo.findData(path)))
        self.load(path)

    def normalisation(self) -> str | tuple | None:
        """The preset name, (mean, std) typed under custom, or None (from
        the file); a ValueError naming the field when a value is bad."""
        preset = self.norm_combo.currentData()
        if preset != CUSTOM:
            return preset
        mean = parse_values(self.mean_edit.text(), "Normalisation mean")
        std = parse_values(self.std_edit.text(), "Normalisation std")
        if len(mean) != len(std):
            raise ValueError(f"Normalisation: {len(mean)} mean values but "
                             f"{len(std)} std values")
        if min(std) <= 0:
            raise ValueError(f"Normalisation std must be positive, got {std}")
        return mean, std

    def load(self, source: str) -> None:
        builtin = source in models.builtin_names()
        try:
            normalize = None if builtin else self.normalisation()
        except ValueError as exc:
            self.say_problem(str(exc))
            return
        self.say_problem("")
        self.info.setText(f"loading {Path(source).name}…")
        code = None if builtin else self.code_row.ref
        job = self.ctx.runner.start(
            load_model_job, name="load model", slot="model-box/load",
            job_args=(source,), builtin=builtin, arch=self.arch(),
            normalize=normalize, code=code,
            code_trusted=self.code_row.digest if code else None,
        )
        job.done.connect(self._on_loaded)
        job.failed.connect(self._on_failed)
        self._job = job

    @Slot(str)
    def say_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    @Slot()
    def _reload_file(self) -> None:
        """Model code chosen or cleared: the open weights file again with it."""
        source = self.combo.currentData()
        if source and source != OPEN_FILE and source not in models.builtin_names():
            self.load(source)

    @Slot(dict)
    def _on_loaded(self, result: dict) -> None:
        model = result["model"]
        meta = getattr(model, "meta", None)
        self.ctx.settings.setValue("model/source", result["source"])
        self._summary = describe(meta, result["parameters"])
        self.info.setText(self._summary)
        self.info.setStyleSheet("")
        self._model = model
        self._warnings, self._accuracy_warning = list(result.get("warnings", ())), None
        self._show_badge()
        self.export_button.setEnabled(meta is not None and meta.in_shape is not None)
        self._say_export("")
        self.ctx.session.set_model(model, Path(result["source"]).name)
        self.model_loaded.emit(result)

    @Slot()
    def _show_wrapper(self) -> None:
        """Say plainly when the session's model is this one inside a wrapper,
        and check the wrapped model's outputs again for the badge."""
        model = self.ctx.session.model
        wrapper = getattr(model, "wrapper", None)
        if self._wrapper_warnings or wrapper is not None:
            self._wrapper_warnings = []
            self._show_badge()
        else:
            self._publish_badge()  # the session's new model starts without one
        if wrapper is not None:
            job = self.ctx.runner.start(check_model_job, name="check wrapped model",
                                        slot="model-box/check", job_args=(model,))
            job.done.connect(self._on_checked)
        if not self._summary or self.info.text().startswith("loading"):
            return
        if wrapper is None:
            self.info.setText(self._summary)
            return
        self.info.setText(f"{self._summary}\nWRAPPED in {wrapper_label(wrapper)}: "
                          f"an {wrapper_note(wrapper['name'])}")

    @Slot(dict)
    def _on_checked(self, result: dict) -> None:
        if result["model"] is not self.ctx.session.model:
            return  # the session moved on while it ran
        load_codes = {w.code for w in self._warnings}
        self._wrapper_warnings = [w for w in result["warnings"]
                                  if w.code not in load_codes]
        self._show_badge()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._summary = ""
        self.info.setText(message)
        self.info.setStyleSheet(ERROR_STYLE)
        self._model = None
        self._warnings, self._accuracy_warning = [], None
        self._show_badge()
        self.export_button.setEnabled(False)
        self.ctx.session.set_model(None, "")

    # -- guardrails -----------------------------------------------------------------
    def show_accuracy(self, clean_acc: float, num_classes: int) -> None:
        """The page's clean accuracy: near chance joins the badge."""
        self._accuracy_warning = guardrails.accuracy_warning(clean_acc, num_classes)
        self._show_badge()

    def warnings(self) -> list:
        return [*self._warnings, *self._wrapper_warnings,
                *([self._accuracy_warning] if self._accuracy_warning else [])]

    def _show_badge(self) -> None:
        found = self.warnings()
        self.badge.setVisible(bool(found))
        self.badge.setText("⚠ " + ", ".join(w.code for w in found) if found else "")
        self.badge.setToolTip("\n\n".join(f"{w.code}: {w.message}.\nFix: {w.fix}."
                                            for w in found))
        self._publish_badge()

    def _publish_badge(self) -> None:
        """The badge's findings go to the session (the pages' current-model
        strips) when the session's model is this box's, wrapped or not."""
        model = self.ctx.session.model
        if self._model is None or model is None or not any(
                m is self._model for m in model.modules()):
            return
        self.ctx.session.set_model_warnings(
            model, tuple(w.code for w in self.warnings()), self.badge.toolTip())

    # -- export ---------------------------------------------------------------------
    def _say_export(self, text: str) -> None:
        self.export_status.setText(text)
        self.export_status.setVisible(bool(text))

    @Slot()
    def choose_export(self) -> None:
        if self._model is None:
            return
        start = str(Path(self.ctx.settings.value("model/export_dir", str(Path.home())))
                    / f"{self._model.meta.arch.replace(':', '-')}.pt2")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export model", start, "torch.export program (*.pt2)")
        if path:
            self.export_to(path if path.endswith(".pt2") else path + ".pt2")

    def export_to(self, path: str) -> None:
        """Export the loaded model in the background; the status line says how
        it went."""
        self.ctx.settings.setValue("model/export_dir", str(Path(path).parent))
        self.export_status.setStyleSheet("")
        self._say_export(f"exporting to {Path(path).name}…")
        self.export_button.setEnabled(False)
        job = self.ctx.runner.start(export_model_job, name="export model",
                                    slot="model-box/export",
                                    job_args=(self._model, path))
        job.done.connect(self._on_exported)
        job.failed.connect(self._on_export_failed)
        self._export_job = job

    @Slot(dict)
    def _on_exported(self, result: dict) -> None:
        self.export_button.setEnabled(self._model is not None)
        self._say_export(f"exported to {result['path']}")

    @Slot(str)
    def _on_export_failed(self, message: str) -> None:
        self.export_button.setEnabled(self._model is not None)
        self.export_status.setStyleSheet(ERROR_STYLE)
        self._say_export(message)

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
