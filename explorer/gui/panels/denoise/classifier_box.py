"""The Denoiser Lab's "Defend a classifier" tab: a denoiser in front of a
classifier, scored by the classifier's accuracy.

``classifier_accuracy`` runs on the first N images of the session's data
with the Attack tab's noise, budget and steps: accuracy on clean, noisy and
denoised images, after ObsAtk (aimed at the reconstruction) and after the
adaptive attack through the denoiser (aimed at the classifier's label), as a
small table and a bar chart.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from torch import nn

from explorer.core import denoise, models
from explorer.core.denoise import rms_to_rho
from explorer.core.denoise.jobs import CLASSIFIER_KEYS, classifier_accuracy
from explorer.core.jobs import Progress
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.panels.denoise.attack_form import DenoiseForm, rms_text
from explorer.gui.panels.denoise.denoiser_list import DenoiserList
from explorer.gui.widgets.job_controls import FollowsJob, JobControls
from explorer.gui.widgets.plots import BarChart

SESSION = "\0session"  # the combo's data for the Data & Model page's model
LABELS = {"clean": "clean", "noisy": "noisy", "denoised": "denoised",
          "obsatk": "after ObsAtk", "adaptive": "after adaptive attack"}
BAR_LABELS = {**LABELS, "obsatk": "ObsAtk", "adaptive": "adaptive"}  # fit a bar
ADAPTIVE_TIP = (
    "An adaptive attack knows the defense: with the same budget as ObsAtk "
    "(a zero-mean perturbation of the noisy image, l2 norm at most ρ) it "
    "maximises the classifier's loss on the denoised image, back-propagating "
    "through the denoiser. ObsAtk only spoils the reconstruction. A "
    "pre-processing defense is worth what remains here (Athalye et al., "
    "Tramèr et al.).")
TIPS = {"clean": "the classifier on the clean images, no denoiser",
        "noisy": "on the noisy observations, no denoiser",
        "denoised": "on the denoiser's output of the noisy observations",
        "obsatk": "on the denoised output after ObsAtk perturbed the observation "
                  "(it aims at the reconstruction, not at the label)",
        "adaptive": ADAPTIVE_TIP}


class ClassifierDefenseBox(QWidget, FollowsJob):
    """Classifier, denoiser and image count on the left; the five accuracies
    (table and bars) on the right."""

    defense_done = Signal(dict)

    def __init__(self, ctx: AppContext, denoisers: DenoiserList, form: DenoiseForm,
                 problem: Callable[[], str | None],
                 parent: QWidget | None = None) -> None:
        """``denoisers`` and ``form``: the Attack tab's list and settings;
        ``problem``: what the page finds wrong with the session's data."""
        super().__init__(parent)
        self.ctx, self.denoisers, self.form = ctx, denoisers, form
        self._problem = problem
        self.results: dict[str, Any] | None = None
        self._builtins: dict[str, nn.Module] = {}
        self.classifier = QComboBox()
        self.classifier.setToolTip("a built-in classifier, or the model loaded on "
                                   "the Data & Model page")
        self.denoiser = QComboBox()
        self.denoiser.setToolTip("one of the Attack tab's denoisers")
        self.n = QSpinBox()
        self.n.setRange(1, 100_000)
        self.n.setValue(100)
        self.n.setSingleStep(50)
        self.n.setToolTip("the first N images of the data set")
        self.settings_text = QLabel(wordWrap=True)
        self.settings_text.setStyleSheet("color: #444; font-size: 11px;")
        self.controls = JobControls("Run classifier defense", bar_below=True)
        self.controls.run_requested.connect(self.run)
        self.run_button = self.controls.run_button
        form_box = QGroupBox("Denoiser in front of a classifier")
        fl = QFormLayout(form_box)
        fl.addRow("Classifier", self.classifier)
        fl.addRow("Denoiser", self.denoiser)
        fl.addRow("Images", self.n)
        fl.addRow(self.settings_text)
        left = QWidget()
        left.setFixedWidth(360)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(form_box)
        ll.addWidget(self.controls)
        ll.addStretch(1)
        self.table = QTableWidget(1, len(CLASSIFIER_KEYS))
        self.table.setHorizontalHeaderLabels([LABELS[k] for k in CLASSIFIER_KEYS])
        for col, key in enumerate(CLASSIFIER_KEYS):
            self.table.horizontalHeaderItem(col).setToolTip(TIPS[key])
        self.table.setVerticalHeaderLabels(["accuracy"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height()
                                  + self.table.verticalHeader().defaultSectionSize()
                                  + 6)
        self.bars = BarChart("Classifier accuracy behind the denoiser",
                             "accuracy (%)")
        self.bars.setToolTip(ADAPTIVE_TIP)
        self.bars.getAxis("left").setWidth(120)  # room for the longest label
        self.bars.setMaximumHeight(340)
        self.note = QLabel(wordWrap=True)
        right = QVBoxLayout()
        right.addWidget(self.table)
        right.addWidget(self.bars, 1)
        right.addWidget(self.note)
        right.addStretch(0)
        root = QHBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.addWidget(left)
        root.addLayout(right, 1)
        self._show({})
        ctx.session.model_changed.connect(self.refresh_classifiers)
        ctx.session.data_changed.connect(self._describe)
        denoisers.changed.connect(self.refresh_denoisers)
        for signal in (form.rms_changed, form.kind_changed, form.level.valueChanged,
                       form.steps.valueChanged):
            signal.connect(self._describe)
        self.refresh_classifiers()
        self.refresh_denoisers()
        self._describe()

    # -- choices ----------------------------------------------------------------
    @Slot()
    def refresh_classifiers(self) -> None:
        chosen = self.classifier.currentData()
        self.classifier.blockSignals(True)
        self.classifier.clear()
        for name in models.builtin_names():
            self.classifier.addItem(name, name)
        s = self.ctx.session
        if s.model is not None:
            label = s.model_source or "unnamed"
            self.classifier.addItem(f"loaded model: {label}", SESSION)
        self.classifier.setCurrentIndex(max(self.classifier.findData(chosen), 0))
        self.classifier.blockSignals(False)

    @Slot()
    def refresh_denoisers(self) -> None:
        chosen = self.denoiser.currentText()
        checked = self.denoisers.checked()
        self.denoiser.blockSignals(True)
        self.denoiser.clear()
        self.denoiser.addItems(self.denoisers.names())
        first = chosen or (checked[0] if checked else "")
        self.denoiser.setCurrentIndex(max(self.denoiser.findText(first), 0))
        self.denoiser.blockSignals(False)

    def choose(self, classifier: str, denoiser: str, n: int) -> None:
        """Select by name (``"session"`` for the loaded model)."""
        data = SESSION if classifier == "session" else classifier
        self.classifier.setCurrentIndex(self.classifier.findData(data))
        self.denoiser.setCurrentIndex(self.denoiser.findText(denoiser))
        self.n.setValue(n)

    @Slot()
    def _describe(self) -> None:
        s = self.ctx.session
        if self.form.is_real():
            self.settings_text.setText("Choose a synthetic noise on the Attack tab "
                                       "(a real image has no label to classify).")
            return
        shape = tuple(s.dataset.info.shape) if self._problem() is None else None
        self.settings_text.setText(
            f"The Attack tab's settings: {self.form.kind.currentText()} noise "
            f"{self.form.level_label.text()} {self.form.level.value():g}; ObsAtk "
            f"and the adaptive attack at {rms_text(self.form.rms(), shape)}, "
            f"{self.form.steps.value()} steps.")

    # -- run ----------------------------------------------------------------------
    def _classifier(self) -> nn.Module:
        key = self.classifier.currentData()
        if key == SESSION:  # a copy: other pages may use the session's model
            return copy.deepcopy(self.ctx.session.model)
        if key not in self._builtins:
            self._builtins[key] = models.load_builtin(key)
        return copy.deepcopy(self._builtins[key])

    def _prepare(self) -> dict[str, Any] | str:
        """The job's arguments, or what is wrong in words."""
        if (problem := self._problem()) is not None:
            return problem
        if self.form.is_real():
            return ("The classifier defense needs labelled images: choose a "
                    "synthetic noise on the Attack tab.")
        if self.classifier.currentIndex() < 0:
            return "Choose a classifier."
        if not self.denoiser.currentText():
            return "Add a denoiser on the Attack tab first."
        s = self.ctx.session
        name = self.denoiser.currentText()
        try:
            values = self.form.values()
            denoiser = self.denoisers.models([name])[name]
            denoise.check_input(denoiser, s.dataset.as_tensors(0, 1)[0])
            classifier = self._classifier()
        except (ParamError, ValueError, OSError) as exc:
            return f"{name}: {exc}" if isinstance(exc, denoise.DenoiserError) \
                else str(exc)
        rho = rms_to_rho(self.form.rms(), tuple(s.dataset.info.shape))
        return {"classifier": classifier.to(s.device),
                "denoiser": copy.deepcopy(denoiser).to(s.device),
                "kind": values["kind"], "level": values["level"], "rho": rho,
                "steps": values["steps"], "n": self.n.value()}

    @Slot()
    def run(self) -> None:
        prepared = self._prepare()
        if isinstance(prepared, str):
            self.controls.say(prepared, error=True)
            return
        s = self.ctx.session
        classifier, denoiser = prepared.pop("classifier"), prepared.pop("denoiser")
        shown = self.classifier.currentText()
        config = {"model": self.denoiser.currentText(), "classifier": shown,
                  "data": s.data_name, "split": s.split, "noise": prepared["kind"],
                  "level": prepared["level"], "rho": prepared["rho"],
                  "steps": prepared["steps"], "n": prepared["n"],
                  "device": str(s.device)}
        recorder = self.ctx.run_recorder(
            "denoise", config, title=f"{config['model']} defending {shown}")
        self.results = None
        self._show({})
        handle = self.ctx.runner.start(
            classifier_accuracy, name="classifier defense", slot="denoise/classifier",
            job_args=(classifier, denoiser, s.dataset), recorder=recorder,
            device=s.device, **prepared)
        self.controls.follow(handle, f"{config['model']} in front of {shown} on "
                                     f"{prepared['n']} images…",
                             progress=self._on_progress, done=self._on_done)

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        self.controls.say(f"{event.label}: batch {event.done}/{event.total}")

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self.results = results
        self._show(results)
        self.controls.say(f"done on {results['n']} images.")
        self.defense_done.emit(results)

    def _show(self, results: dict) -> None:
        values = [100 * results[f"acc_{k}"] if results else 0.0
                  for k in CLASSIFIER_KEYS]
        for col, (key, value) in enumerate(zip(CLASSIFIER_KEYS, values,
                                               strict=True)):
            item = QTableWidgetItem(f"{value:.1f}%" if results else "—")
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(TIPS[key])
            self.table.setItem(0, col, item)
        self.bars.set_values(values if results else [],
                             [f"{BAR_LABELS[k]} {v:.1f}%" for k, v in
                              zip(CLASSIFIER_KEYS, values, strict=True)]
                             if results else [])
        if results:
            lost = values[2] - values[4]
            self.note.setText(
                f"The adaptive attack takes {lost:.1f} points off the denoised "
                f"accuracy, ObsAtk {values[2] - values[3]:.1f}: judge the defense "
                f"by the adaptive figure.")
        else:
            self.note.setText("")

    def figures(self) -> dict[str, str]:
        """What the table shows, by key (for tests and screenshots)."""
        return {key: self.table.item(0, col).text()
                for col, key in enumerate(CLASSIFIER_KEYS)}
