"""Choose the images to attack: from the data set, drawn, or from a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.data import images
from explorer.gui.widgets.draw_canvas import DrawCanvas
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc

GRID_IMAGES = 40
MAX_SELECTED = 48
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp)"


@dataclass(frozen=True)
class Chosen:
    """One image to attack: C×H×W float32 in [0, 1], its label, where it came from."""

    x: np.ndarray
    y: int
    source: str


def read_image_file(path: str | Path, shape: tuple[int, ...], invert: bool = False):
    """A picture file → C×H×W float32 in [0, 1] of the model's input shape."""
    array = images.read_chw(path, tuple(shape))
    return 1.0 - array if invert else array


class ImagePicker(QWidget):
    """Tabs: the data set's first images (click to select), a drawing canvas
    (1-channel sets), and an image file (button or drop onto the panel)."""

    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None, *,
                 grid_images: int = GRID_IMAGES) -> None:
        super().__init__(parent)
        self.grid_images = grid_images  # how many of the data set's images to offer
        self._dataset = None
        self._shape: tuple[int, ...] | None = None
        self._classes: tuple[str, ...] = ()
        self._grid_items: list[Chosen] = []
        self._selected: list[int] = []  # grid indices, in click order
        self._extra: list[Chosen] = []  # drawn or opened
        self._build()

    def _build(self) -> None:
        self.grid = ImageGrid(columns=8, tile=28)
        self.grid.clicked.connect(self.toggle)
        self.first_n = QSpinBox()
        self.first_n.setRange(1, self.grid_images)
        self.first_n.setValue(8)
        self.first_button = QPushButton("Select first")
        self.first_button.clicked.connect(self._select_first_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Deselect everything (drawn and opened too)")
        self.clear_button.clicked.connect(self.clear)
        row = QHBoxLayout()
        row.addWidget(self.first_button)
        row.addWidget(self.first_n)
        row.addStretch(1)
        row.addWidget(self.clear_button)
        data_tab = QWidget()
        dl = QVBoxLayout(data_tab)
        dl.setContentsMargins(4, 4, 4, 4)
        dl.addWidget(self.grid)
        dl.addLayout(row)
        dl.addStretch(1)

        self.canvas = DrawCanvas(zoom=6)
        self.brush = QDoubleSpinBox()
        self.brush.setRange(0.5, 4.0)
        self.brush.setSingleStep(0.5)
        self.brush.setValue(self.canvas.brush)
        self.brush.valueChanged.connect(self.canvas.set_brush)
        self.draw_label = QComboBox()
        self.erase_button = QPushButton("Clear canvas")
        self.erase_button.clicked.connect(self.canvas.clear)
        self.add_drawing_button = QPushButton("Add to selection")
        self.add_drawing_button.clicked.connect(self.add_drawing)
        self.draw_note = QLabel()
        self.draw_note.setWordWrap(True)
        side = QFormLayout()
        side.addRow("brush", self.brush)
        side.addRow("label", self.draw_label)
        side.addRow(self.erase_button)
        side.addRow(self.add_drawing_button)
        draw_tab = QWidget()
        drl = QHBoxLayout(draw_tab)
        drl.setContentsMargins(4, 4, 4, 4)
        drl.addWidget(self.canvas, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.addLayout(side)
        col.addWidget(self.draw_note)
        col.addStretch(1)
        drl.addLayout(col, 1)

        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self.choose_file)
        self.file_label = QComboBox()
        self.invert = QCheckBox("invert (dark object on light ground)")
        hint = QLabel("…or drop a PNG/JPG onto this panel. It is converted to the "
                      "model's input (grayscale or RGB, resized).")
        hint.setWordWrap(True)
        file_tab = QWidget()
        fl = QFormLayout(file_tab)
        fl.addRow("label", self.file_label)
        fl.addRow(self.invert)
        fl.addRow(self.open_button)
        fl.addRow(hint)

        self.tabs = QTabWidget()
        self.tabs.addTab(data_tab, "Data set")
        self.tabs.addTab(draw_tab, "Draw")
        self.tabs.addTab(file_tab, "File")
        self.summary = QLabel()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        self.message.hide()
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.tabs)
        box.addWidget(self.summary)
        box.addWidget(self.message)
        self._update_summary()

    # -- source ---------------------------------------------------------------
    def set_source(
        self, dataset, shape: tuple[int, ...] | None, classes: tuple[str, ...]
    ) -> None:
        """Show the first images of ``dataset``; ``shape`` is the model's input
        (C, H, W) for drawings and files, ``None`` when images cannot be used."""
        self._dataset, self._shape, self._classes = dataset, shape, tuple(classes)
        self._selected.clear()
        self._extra = [e for e in self._extra if shape and e.x.shape == tuple(shape)]
        self._grid_items = []
        images, captions = [], []
        if dataset is not None and shape is not None:
            for i in range(min(self.grid_images, len(dataset))):
                x, y = dataset[i]
                item = Chosen(x.numpy().astype(np.float32), int(y), f"#{i}")
                self._grid_items.append(item)
                images.append(chw_to_hwc(item.x))
                captions.append(self.class_name(int(y)))
        self.grid.set_images(images, captions)
        for combo in (self.draw_label, self.file_label):
            combo.clear()
            for k, name in enumerate(self._classes):
                combo.addItem(f"{k}: {name}", k)
        drawable = shape is not None and shape[0] == 1
        self.canvas.setEnabled(drawable)
        self.add_drawing_button.setEnabled(drawable)
        self.draw_note.setText("" if drawable else
                               "Drawing is for 1-channel images; open a file instead.")
        self.open_button.setEnabled(shape is not None)
        self.grid.set_marked(())
        self._changed()

    @property
    def dataset(self):
        """The data set whose images the grid shows (None when unusable)."""
        return self._dataset

    def classes(self) -> tuple[str, ...]:
        return self._classes

    def class_name(self, k: int) -> str:
        return self._classes[k] if 0 <= k < len(self._classes) else str(k)

    # -- selection ------------------------------------------------------------
    def selection(self) -> list[Chosen]:
        return [self._grid_items[i] for i in self._selected] + list(self._extra)

    @Slot(int)
    def toggle(self, index: int) -> None:
        if index in self._selected:
            self._selected.remove(index)
        elif len(self.selection()) < MAX_SELECTED:
            self._selected.append(index)
        self._changed()

    def select_first(self, n: int) -> None:
        self._selected = list(range(min(n, len(self._grid_items))))
        self._changed()

    @Slot()
    def _select_first_clicked(self) -> None:
        self.select_first(self.first_n.value())

    @Slot()
    def clear(self) -> None:
        self._selected.clear()
        self._extra.clear()
        self._changed()

    @Slot()
    def add_drawing(self) -> None:
        if self.canvas.is_empty():
            self.show_message("Draw something first.")
            return
        label = int(self.draw_label.currentData() or 0)
        n = sum(e.source.startswith("drawing") for e in self._extra) + 1
        self._add(Chosen(self.canvas.image()[None], label, f"drawing {n}"))

    @Slot()
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.add_file(path)

    def add_file(self, path: str) -> bool:
        """Convert a picture to the model's input and select it; False (and a
        message naming the file) when it cannot be used."""
        if self._shape is None:
            self.show_message(f"Cannot use {path}: choose an image data set and a "
                              "model first.")
            return False
        try:
            x = read_image_file(path, self._shape, self.invert.isChecked())
        except ValueError as exc:
            self.show_message(str(exc))
            return False
        label = int(self.file_label.currentData() or 0)
        return self._add(Chosen(x, label, Path(path).name))

    def _add(self, item: Chosen) -> bool:
        if len(self.selection()) >= MAX_SELECTED:
            self.show_message(f"At most {MAX_SELECTED} images can be attacked at once.")
            return False
        self._extra.append(item)
        self._changed()
        return True

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _changed(self) -> None:
        self.grid.set_marked(self._selected)
        self.show_message("")
        self._update_summary()
        self.selection_changed.emit()

    def _update_summary(self) -> None:
        n, extra = len(self.selection()), len(self._extra)
        more = f" ({extra} drawn or opened)" if extra else ""
        self.summary.setText(f"{n} image{'s' * (n != 1)} selected{more}"
                             if n else "Click images to select them.")
