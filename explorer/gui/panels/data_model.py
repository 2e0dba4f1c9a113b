"""Data & Model: pick a data set and a model; clean accuracy follows at once."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import data, models
from explorer.core.analysis.accuracy import clean_accuracy
from explorer.core.loading import detect_folder, load_data_job
from explorer.gui.context import AppContext
from explorer.gui.widgets.accuracy_view import AccuracyView
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc
from explorer.gui.widgets.model_box import ModelBox
from explorer.gui.widgets.param_form import ParamForm
from explorer.gui.widgets.plots import ScatterView

SAMPLES = 20
DEFAULT_DATA = "fashion-mnist-mini"


class DataModelPanel(QWidget):
    title = "Data && Model"
    demo_finished = Signal()
    evaluated = Signal(dict)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._data_job = self._eval_job = None
        self._build()
        ctx.session.data_changed.connect(self.on_data_changed)
        ctx.session.model_changed.connect(self.on_model_changed)
        ctx.session.device_changed.connect(self.evaluate)

    # -- layout ---------------------------------------------------------------
    def _build(self) -> None:
        s = self.ctx.settings
        self.data_combo = QComboBox()
        for name in data.names():
            self.data_combo.addItem(f"{data.info(name).title}", name)
        self.split_combo = QComboBox()
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        self.folder_button = QPushButton("Folder…")
        self.download_button = QPushButton("Download")
        self.download_button.setToolTip("Download the official files into the folder")
        self.data_form = ParamForm()
        self.data_status = QLabel()
        self.data_status.setWordWrap(True)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.folder_button)
        folder_row.addWidget(self.download_button)
        data_box = QGroupBox("Data set")
        dl = QVBoxLayout(data_box)
        dl.addWidget(self.data_combo)
        dl.addWidget(self.split_combo)
        dl.addLayout(folder_row)
        dl.addWidget(self.data_form)
        dl.addWidget(self.data_status)

        self.model_box = ModelBox(self.ctx)

        self.eval_button = QPushButton("Evaluate again")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020; font-weight: 600;")
        self.banner.hide()
        eval_box = QGroupBox("Clean accuracy")
        el = QVBoxLayout(eval_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.eval_button)
        buttons.addWidget(self.cancel_button)
        el.addLayout(buttons)
        el.addWidget(self.progress)

        left = QVBoxLayout()
        left.addWidget(data_box)
        left.addWidget(self.model_box)
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

        self.data_combo.currentIndexChanged.connect(self.on_data_choice)
        self.split_combo.currentIndexChanged.connect(self.load_data)
        self.data_form.values_changed.connect(self.load_data)
        self.folder_button.clicked.connect(self.choose_folder)
        self.download_button.clicked.connect(self.download)
        self.eval_button.clicked.connect(self.evaluate)
        self.cancel_button.clicked.connect(self.cancel_eval)
        last = s.value("data/name", DEFAULT_DATA)
        index = self.data_combo.findData(last)
        self._restoring_split = s.value("data/split", "test")
        self.data_combo.setCurrentIndex(max(index, 0))
        if index <= 0:
            self.on_data_choice()

    # -- data ----------------------------------------------------------------
    def current_data(self) -> str:
        return self.data_combo.currentData()

    def _root(self, name: str) -> str:
        return str(self.ctx.settings.value(f"data/root/{name}", "") or "")

    @Slot()
    def on_data_choice(self) -> None:
        info = data.info(self.current_data())
        self.split_combo.blockSignals(True)
        self.split_combo.clear()
        self.split_combo.addItems(list(info.splits))
        wanted = self._restoring_split or "test"
        self._restoring_split = None
        self.split_combo.setCurrentIndex(max(0, self.split_combo.findText(wanted)))
        self.split_combo.blockSignals(False)
        self.data_form.blockSignals(True)
        self.data_form.set_params(info.params)
        self.data_form.blockSignals(False)
        self._fit_folder_to_model()
        for w in (self.folder_label, self.folder_button):
            w.setVisible(info.needs_root)
        self.download_button.setVisible(info.downloadable)
        root = self._root(info.name)
        self.folder_label.setText(root or "no folder chosen")
        self.load_data()

    @Slot()
    def choose_folder(self) -> None:
        name = self.current_data()
        folder = QFileDialog.getExistingDirectory(
            self, f"Folder for {data.info(name).title}", self._root(name)
        )
        if folder:
            self.set_folder(folder)

    def open_folder(self, folder: str) -> None:
        """File ▸ Open data folder: recognise the set inside, or use image-folder."""
        name = detect_folder(folder)
        self.ctx.settings.setValue(f"data/root/{name}", folder)
        index = self.data_combo.findData(name)
        if index == self.data_combo.currentIndex():
            self.set_folder(folder)
        else:
            self.data_combo.setCurrentIndex(index)

    def set_folder(self, folder: str) -> None:
        name = self.current_data()
        self.ctx.settings.setValue(f"data/root/{name}", folder)
        self.folder_label.setText(folder)
        self.load_data()

    @Slot()
    def load_data(self) -> None:
        name, split = self.current_data(), self.split_combo.currentText()
        info = data.info(name)
        root = self._root(name) or None
        if info.needs_root and root is None:
            self._data_error(
                f"{info.title}: choose the folder that holds its files (Folder…)"
                + (" or download them (Download)." if info.downloadable else ".")
            )
            return
        try:
            params = self.data_form.values()
        except ValueError as exc:
            self._data_error(str(exc))
            return
        self.data_status.setText(f"loading {info.title} ({split})…")
        job = self.ctx.runner.start(
            load_data_job, name=f"load {name}", slot="data-model/data",
            job_args=(name, split), root=root, params=params,
        )
        job.done.connect(self._on_data_loaded)
        job.failed.connect(self._data_error)
        self._data_job = job

    @Slot(dict)
    def _on_data_loaded(self, result: dict) -> None:
        self.ctx.settings.setValue("data/name", result["name"])
        self.ctx.settings.setValue("data/split", result["split"])
        self.data_status.setText(f"{result['n']} items")
        self.ctx.session.set_data(result["dataset"], result["name"], result["split"])

    @Slot(str)
    def _data_error(self, message: str) -> None:
        self.data_status.setText(message)
        self.ctx.session.set_data(None, self.current_data(), "")

    @Slot()
    def download(self) -> None:
        name = self.current_data()
        root = self._root(name)
        if not root:
            self.choose_folder()
            root = self._root(name)
            if not root:
                return
        job = self.ctx.runner.start(
            data.download, name=f"download {name}", slot="data-model/download",
            job_args=(name, root),
        )
        self.download_button.setEnabled(False)
        self.data_status.setText(f"downloading {name} into {root}…")
        job.progress.connect(self._on_download_progress)
        job.done.connect(self._on_downloaded)
        job.failed.connect(self._on_download_failed)
        job.cancelled.connect(self._on_download_failed)

    @Slot(object)
    def _on_download_progress(self, p) -> None:
        self.data_status.setText(f"{p.label} {100 * p.fraction:.0f}%")

    @Slot(dict)
    def _on_downloaded(self, _result: dict) -> None:
        self.download_button.setEnabled(True)
        self.load_data()

    @Slot()
    @Slot(str)
    def _on_download_failed(self, message: str = "download cancelled") -> None:
        self.download_button.setEnabled(True)
        self.data_status.setText(message)

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
        if self._fit_folder_to_model():
            self.load_data()  # the reload re-evaluates
        else:
            self.evaluate()

    def _fit_folder_to_model(self) -> bool:
        """Convert the user's own images to the model's input shape.

        Returns True when the image-folder parameters changed.
        """
        model = self.ctx.session.model
        shape = getattr(getattr(model, "meta", None), "in_shape", None)
        if self.current_data() != "image-folder" or not shape or len(shape) != 3:
            return False
        wanted = dict(zip(("channels", "height", "width"), shape, strict=True))
        if all(self.data_form.values().get(k) == v for k, v in wanted.items()):
            return False
        self.data_form.blockSignals(True)
        self.data_form.set_values(wanted)
        self.data_form.blockSignals(False)
        return True

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
        if problem is not None:
            self.accuracy.clear(f"Clean accuracy: — ({problem})")
            return
        recorder = self.ctx.run_recorder("eval", {
            "model": session.model_source, "data": session.data_name,
            "split": session.split, "device": str(session.device),
        })
        job = self.ctx.runner.start(
            clean_accuracy, name="clean accuracy", slot="data-model/eval",
            job_args=(session.model, session.dataset), device=session.device,
            recorder=recorder,
        )
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.accuracy.headline.setText("Clean accuracy: computing…")
        job.progress.connect(self._on_eval_progress)
        job.done.connect(self._on_eval_done)
        job.failed.connect(self._on_eval_failed)
        job.cancelled.connect(self._on_eval_cancelled)
        self._eval_job = job

    @Slot()
    def cancel_eval(self) -> None:
        if self._eval_job is not None:
            self._eval_job.cancel()

    @Slot(object)
    def _on_eval_progress(self, p) -> None:
        self.progress.setRange(0, p.total)
        self.progress.setValue(p.done)

    @Slot(dict)
    def _on_eval_done(self, result: dict) -> None:
        self.cancel_button.setEnabled(False)
        session = self.ctx.session
        self.accuracy.show_result(
            result, f"{session.model_source} on {session.data_name} ({session.split})"
        )
        self.evaluated.emit(result)

    @Slot(str)
    def _on_eval_failed(self, message: str) -> None:
        self.cancel_button.setEnabled(False)
        self.accuracy.clear(f"Clean accuracy failed: {message}")

    @Slot()
    def _on_eval_cancelled(self) -> None:
        self.cancel_button.setEnabled(False)
        self.accuracy.clear("Clean accuracy: cancelled")

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


if __name__ == "__main__":
    from explorer.gui.preview import preview

    raise SystemExit(preview("data"))
