"""Which denoisers to attack: the built-ins and files, each with a check box."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from torch import nn

from explorer.core import denoise
from explorer.core.denoise.files import builtins_for, describe

FILE_FILTER = "Denoiser weights (*.safetensors);;All files (*)"


class DenoiserList(QWidget):
    """Built-ins are loaded when first needed; a file is loaded when added,
    so a wrong file (a classifier, say) is refused at once with its reason."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._models: dict[str, nn.Module] = {}
        self._sources: dict[str, str] = {}  # shown name -> built-in name or path
        self.list = QListWidget()
        self.list.setMaximumHeight(84)
        self.list.itemChanged.connect(self._on_item_changed)
        self.add_button = QPushButton("Add file…")
        self.add_button.setToolTip("A denoiser saved by this application "
                                   "(.safetensors with denoiser metadata)")
        self.add_button.clicked.connect(self.choose_file)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        self.message.hide()
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.add_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.list)
        box.addLayout(row)
        box.addWidget(self.message)
        for name in denoise.builtin_names():
            self._add_item(name, name, checked=True)
        if not self._sources:
            self.show_message("No built-in denoisers are installed: add a "
                              "denoiser file, or train one on the Train tab.")

    def _add_item(self, name: str, source: str, *, checked: bool) -> None:
        self._sources[name] = source
        item = QListWidgetItem(name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else
                           Qt.CheckState.Unchecked)
        item.setToolTip(describe(source) or source)
        self.list.addItem(item)

    # -- adding ---------------------------------------------------------------
    @Slot()
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add denoiser", "", FILE_FILTER)
        if path:
            self.add_file(path)

    def add_file(self, path: str) -> bool:
        """Load a denoiser file and check it; False (and the reason shown)
        when it cannot be used."""
        try:
            model = denoise.load(path)
        except denoise.DenoiserError as exc:
            self.show_message(str(exc))
            return False
        name = Path(path).stem
        while name in self._sources and self._sources[name] != str(path):
            name += "'"
        if name not in self._sources:
            self._add_item(name, str(path), checked=True)
        self._models[name] = model
        self.show_message("")
        self.changed.emit()
        return True

    def add_model(self, name: str, model: nn.Module) -> None:
        """A denoiser made in this session (e.g. a fresh one for the demo)."""
        if name not in self._sources:
            self._add_item(name, name, checked=True)
        self._models[name] = model
        self.show_message("")
        self.changed.emit()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # -- choosing ---------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._sources)

    def checked(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked(self, names: list[str]) -> None:
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else
                               Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self.changed.emit()

    def check_for_data(self, data_name: str | None) -> None:
        """Check the built-ins trained for this data set (when there are
        some) and uncheck the other built-ins; files keep their state."""
        matching = [name for name in builtins_for(data_name) if name in self._sources]
        if not matching:
            return
        builtins = denoise.builtin_names()
        keep = [name for name in self.checked() if name not in builtins]
        self.set_checked([*matching, *keep])

    def models(self, names: list[str]) -> dict[str, nn.Module]:
        """The named denoisers, loading built-ins the first time (small files:
        milliseconds). Raises DenoiserError naming the file that failed."""
        for name in names:
            if name not in self._models:
                self._models[name] = denoise.load_any(self._sources[name])
        return {name: self._models[name] for name in names}

    @Slot(QListWidgetItem)
    def _on_item_changed(self, _item: QListWidgetItem) -> None:
        self.changed.emit()
