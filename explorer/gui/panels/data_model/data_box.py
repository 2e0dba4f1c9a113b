"""Data set chooser: built-in, torchvision (folder or download), own images, toys.

Loading runs as a job; the loaded set goes to the session (``set_data``).
"""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from explorer.core import data
from explorer.core.loading import detect_folder, load_data_job
from explorer.gui.context import AppContext
from explorer.gui.widgets.param_form import ParamForm

DEFAULT_DATA = "fashion-mnist-mini"


class DataBox(QGroupBox):
    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__("Data set", parent)
        self.ctx = ctx
        self._data_job = None
        self.combo = QComboBox()
        for name in data.names():
            self.combo.addItem(f"{data.info(name).title}", name)
        self.split_combo = QComboBox()
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        self.folder_button = QPushButton("Folder…")
        self.download_button = QPushButton("Download")
        self.download_button.setToolTip("Download the official files into the folder")
        self.form = ParamForm()
        self.status = QLabel()
        self.status.setWordWrap(True)
        # Unreadable images left out of an image folder: a count, the names
        # and reasons in the tooltip.
        self.skipped = QLabel()
        self.skipped.setStyleSheet("color: #a15c00;")
        self.skipped.setVisible(False)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.folder_button)
        folder_row.addWidget(self.download_button)
        dl = QVBoxLayout(self)
        dl.addWidget(self.combo)
        dl.addWidget(self.split_combo)
        dl.addLayout(folder_row)
        dl.addWidget(self.form)
        dl.addWidget(self.status)
        dl.addWidget(self.skipped)

        self.combo.currentIndexChanged.connect(self.on_data_choice)
        self.split_combo.currentIndexChanged.connect(self.load_data)
        self.form.values_changed.connect(self.load_data)
        self.folder_button.clicked.connect(self.choose_folder)
        self.download_button.clicked.connect(self.download)
        s = ctx.settings
        last = s.value("data/name", DEFAULT_DATA)
        index = self.combo.findData(last)
        self._restoring_split = s.value("data/split", "test")
        self.combo.setCurrentIndex(max(index, 0))
        if index <= 0:
            self.on_data_choice()

    def current_data(self) -> str:
        return self.combo.currentData()

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
        self.form.blockSignals(True)
        self.form.set_params(info.params)
        self.form.blockSignals(False)
        self.fit_folder_to_model()
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
        index = self.combo.findData(name)
        if index == self.combo.currentIndex():
            self.set_folder(folder)
        else:
            self.combo.setCurrentIndex(index)

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
            params = self.form.values()
        except ValueError as exc:
            self._data_error(str(exc))
            return
        self.status.setText(f"loading {info.title} ({split})…")
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
        self.status.setText(f"{result['n']} items")
        self._show_skipped(getattr(result["dataset"], "skipped", ()))
        self.ctx.session.set_data(result["dataset"], result["name"], result["split"])

    def _show_skipped(self, errors) -> None:
        if not errors:
            self.skipped.setVisible(False)
            self.skipped.setToolTip("")
            return
        noun = "file" if len(errors) == 1 else "files"
        self.skipped.setText(f"{len(errors)} unreadable image {noun} skipped "
                             "(hover for names)")
        self.skipped.setToolTip("\n".join(str(e) for e in errors))
        self.skipped.setVisible(True)

    @Slot(str)
    def _data_error(self, message: str) -> None:
        self._show_skipped(())
        self.status.setText(message)
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
        self.status.setText(f"downloading {name} into {root}…")
        job.progress.connect(self._on_download_progress)
        job.done.connect(self._on_downloaded)
        job.failed.connect(self._on_download_failed)
        job.cancelled.connect(self._on_download_failed)

    @Slot(object)
    def _on_download_progress(self, p) -> None:
        self.status.setText(f"{p.label} {100 * p.fraction:.0f}%")

    @Slot(dict)
    def _on_downloaded(self, _result: dict) -> None:
        self.download_button.setEnabled(True)
        self.load_data()

    @Slot()
    @Slot(str)
    def _on_download_failed(self, message: str = "download cancelled") -> None:
        self.download_button.setEnabled(True)
        self.status.setText(message)

    def fit_folder_to_model(self) -> bool:
        """Convert the user's own images to the model's input shape.

        Returns True when the image-folder parameters changed.
        """
        model = self.ctx.session.model
        shape = getattr(getattr(model, "meta", None), "in_shape", None)
        if self.current_data() != "image-folder" or not shape or len(shape) != 3:
            return False
        wanted = dict(zip(("channels", "height", "width"), shape, strict=True))
        if all(self.form.values().get(k) == v for k, v in wanted.items()):
            return False
        self.form.blockSignals(True)
        self.form.set_values(wanted)
        self.form.blockSignals(False)
        return True
