"""Data & Model: pick a data set and a model; clean accuracy follows at once."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import models
from explorer.core.analysis.accuracy import clean_accuracy
from explorer.gui.context import AppContext
from explorer.gui.panels.data_model.accuracy_view import AccuracyView
from explorer.gui.panels.data_model.data_box import DEFAULT_DATA, DataBox
from explorer.gui.panels.data_model.model_box import ModelBox
from explorer.gui.panels.data_model.wrapper_box import WrapperBox
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc
from explorer.gui.widgets.job_controls import JobControls
from explorer.gui.widgets.plots import ScatterView

SAMPLES = 20


class DataModelPanel(QWidget):
    title = "Data && Model"
    demo_finished = Signal()
    evaluated = Signal(dict)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._eval_job = None
        self._eval_for: tuple = (None, None)  # the model and data measured last
        self._build()
        ctx.session.data_changed.connect(self.on_data_changed)
        ctx.session.model_changed.connect(self.on_model_changed)
        ctx.session.device_changed.connect(self.evaluate)

    # -- layout ---------------------------------------------------------------
    def _build(self) -> None:
        self.data_box = DataBox(self.ctx)
        # The data box's parts, under the names the panel has always had.
        box = self.data_box
        self.data_combo, self.split_combo = box.combo, box.split_combo
        self.data_form, self.data_status = box.form, box.status
        self.folder_label, self.folder_button = box.folder_label, box.folder_button
        self.download_button = box.download_button
        self.open_folder, self.set_folder = box.open_folder, box.set_folder
        self.load_data, self.current_data = box.load_data, box.current_data

        self.model_box = ModelBox(self.ctx)
        self.wrapper_box = WrapperBox(self.ctx, self._data_source)

        self.eval_controls = JobControls("Evaluate again", status=False, bar_below=True)
        self.eval_button = self.eval_controls.run_button
        self.cancel_button = self.eval_controls.cancel_button
        self.progress = self.eval_controls.progress
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020; font-weight: 600;")
        self.banner.hide()
        eval_box = QGroupBox("Clean accuracy")
        el = QVBoxLayout(eval_box)
        el.addWidget(self.eval_controls)

        left = QVBoxLayout()
        left.addWidget(self.data_box)
        left.addWidget(self.model_box)
        left.addWidget(self.wrapper_box)
        left.addWidget(eval_box)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setFixedWidth(310)

        self.grid = ImageGrid(columns=10, tile=52)
        self.scatter = ScatterView("Samples")
        self.samples = QStackedWidget()
        self.samples.addWidget(self.grid)
        self.samples.addWidget(self.scatter)
        samples_box = QGroupBox("Samples")
        QVBoxLayout(samples_box).addWidget(self.samples)
        samples_box.setMaximumHeight(210)
        self.accuracy = AccuracyView()
        right = QVBoxLayout()
        right.addWidget(self.banner)
        right.addWidget(samples_box, 0)
        right.addWidget(self.accuracy, 1)
        root = QHBoxLayout(self)
        root.addWidget(left_widget)
        root.addLayout(right, 1)

        self.eval_controls.run_requested.connect(self.evaluate)

    # -- data ----------------------------------------------------------------
    def _data_source(self) -> tuple[str, str, str | None, dict]:
        """Where Mixup Inference draws its mixup set: the chosen data set."""
        name = self.current_data()
        root = str(self.ctx.settings.value(f"data/root/{name}", "") or "") or None
        try:
            params = self.data_form.values()
        except ValueError:
            params = {}
        return name, self.split_combo.currentText(), root, params

    @Slot()
    def on_data_changed(self) -> None:
        ds = self.ctx.session.dataset
        if ds is None:
            self.grid.set_images([], [])
            self.accuracy.clear()
            return
        self._show_samples(ds)
        self.evaluate()

    def _show_samples(self, ds) -> None:
        classes = list(ds.classes)
        if tuple(ds.info.shape) == (2,):
            x, y = ds.as_tensors(0, min(len(ds), 2000))
            self.scatter.set_points(x.numpy(), y.numpy())
            self.samples.setCurrentWidget(self.scatter)
            return
        n = min(SAMPLES, len(ds))
        idx = np.linspace(0, len(ds) - 1, n).astype(int) if n else []
        images, captions = [], []
        for i in idx:
            x, y = ds[int(i)]
            images.append(chw_to_hwc(x.numpy()))
            captions.append(classes[int(y)] if 0 <= int(y) < len(classes) else str(y))
        self.grid.set_images(images, captions)
        self.samples.setCurrentWidget(self.grid)

    # -- model ---------------------------------------------------------------
    @Slot()
    def on_model_changed(self) -> None:
        if self.data_box.fit_folder_to_model():
            self.load_data()  # the reload re-evaluates
        else:
            self.evaluate()

    # -- evaluation ----------------------------------------------------------
    def _problem(self) -> str | None:
        session = self.ctx.session
        if session.dataset is None:
            return "Choose a data set."
        if session.model is None:
            return "Choose a model."
        try:
            models.check_compatible(session.model, session.dataset.info)
        except models.ModelError as exc:
            return str(exc)
        return None

    @Slot()
    def evaluate(self) -> None:
        problem = self._problem()
        session = self.ctx.session
        both = session.model is not None and session.dataset is not None
        self.banner.setVisible(problem is not None and both)
        self.banner.setText(problem or "")
        self._eval_for = (session.model, session.dataset)
        if problem is not None:
            self.accuracy.clear(f"Clean accuracy: — ({problem})")
            session.set_clean_accuracy(*self._eval_for, None)
            return
        recorder = self.ctx.run_recorder("eval", {
            "model": session.model_source, "data": session.data_name,
            "split": session.split, "device": str(session.device),
            **({"wrapper": wrapper} if (wrapper := getattr(
                session.model, "wrapper", None)) else {}),
        })
        job = self.ctx.runner.start(
            clean_accuracy, name="clean accuracy", slot="data-model/eval",
            job_args=(session.model, session.dataset), device=session.device,
            recorder=recorder,
        )
        self.eval_controls.follow(job)
        self.accuracy.headline.setText("Clean accuracy: computing…")
        session.set_clean_accuracy(*self._eval_for, None, measuring=True)
        job.done.connect(self._on_eval_done)
        job.failed.connect(self._on_eval_failed)
        job.cancelled.connect(self._on_eval_cancelled)
        self._eval_job = job

    @Slot()
    def cancel_eval(self) -> None:
        self.eval_controls.cancel()

    @Slot(dict)
    def _on_eval_done(self, result: dict) -> None:
        session = self.ctx.session
        self.accuracy.show_result(
            result, f"{session.model_source} on {session.data_name} ({session.split})"
        )
        session.set_clean_accuracy(*self._eval_for, result["clean_acc"])
        self.model_box.show_accuracy(result["clean_acc"], len(result["classes"]))
        self.evaluated.emit(result)

    @Slot(str)
    def _on_eval_failed(self, message: str) -> None:
        self.accuracy.clear(f"Clean accuracy failed: {message}")
        self.ctx.session.set_clean_accuracy(*self._eval_for, None)

    @Slot()
    def _on_eval_cancelled(self) -> None:
        self.accuracy.clear("Clean accuracy: cancelled")
        self.ctx.session.set_clean_accuracy(*self._eval_for, None)

    # -- demo (screenshots, `python -m explorer.gui.panels.data_model`) --------
    def run_demo(self) -> None:
        self.evaluated.connect(self._demo_done)
        index = self.data_combo.findData(DEFAULT_DATA)
        if self.data_combo.currentIndex() != index:
            self.data_combo.setCurrentIndex(index)
        else:
            self.split_combo.setCurrentText("test")
        self.model_box.choose_builtin("fmnist-cnn-standard")

    @Slot(dict)
    def _demo_done(self, _result: dict) -> None:
        session = self.ctx.session
        if session.data_name == DEFAULT_DATA and session.model_source:
            self.evaluated.disconnect(self._demo_done)
            self.demo_finished.emit()

