"""A grid of small images with captions; click one to pick it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from explorer.gui.widgets.aspect_image import AspectImage, ElidedLabel
from explorer.gui.widgets.aspect_image import chw_to_hwc as chw_to_hwc
from explorer.gui.widgets.aspect_image import to_qimage as to_qimage
from explorer.gui.widgets.copy_image import add_copy_action


class _Tile(QWidget):
    def __init__(self, index: int, grid: ImageGrid) -> None:
        super().__init__(grid)
        self.index = index
        self._grid = grid
        # At most tile + 14 wide (long captions are elided, not widened); a
        # column narrower than the grid asks for shrinks the tiles instead of
        # piling them onto each other.
        self.setMaximumWidth(grid.tile + 14)
        self.setMinimumWidth(min(grid.tile, 16) + 14)
        box = QVBoxLayout(self)
        box.setContentsMargins(2, 2, 2, 2)
        box.setSpacing(1)
        # The picture keeps the image's shape however the layout sizes it.
        self.picture = AspectImage(grid.tile)
        self.caption = ElidedLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("font-size: 10px;")
        box.addWidget(self.picture, 1)
        box.addWidget(self.caption)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self) -> QSize:
        # the same for every tile whatever its caption, so squeezed columns
        # stay equal
        return QSize(self.maximumWidth(), super().sizeHint().height())

    def mousePressEvent(self, event) -> None:
        self._grid.clicked.emit(self.index)
        super().mousePressEvent(event)


class ImageGrid(QWidget):
    clicked = Signal(int)

    def __init__(self, columns: int = 8, tile: int = 72, parent=None) -> None:
        super().__init__(parent)
        self.columns = columns
        self.tile = tile
        self._layout = QGridLayout(self)
        self._layout.setSpacing(4)
        self._tiles: list[_Tile] = []
        self.captions: list[str] = []
        self._marks: dict[int, str] = {}
        self.marked: set[int] = set()
        add_copy_action(self)

    def set_images(self, images: Sequence[np.ndarray], captions: Sequence[str]) -> None:
        """Show H×W(×C) images in [0, 1]; tiles are reused between calls."""
        while len(self._tiles) < len(images):
            tile = _Tile(len(self._tiles), self)
            r, c = divmod(len(self._tiles), self.columns)
            self._layout.addWidget(tile, r, c)
            self._tiles.append(tile)
        for i, tile in enumerate(self._tiles):
            tile.setVisible(i < len(images))
        shown = self._tiles[: len(images)]
        for tile, image, caption in zip(shown, images, captions, strict=True):
            tile.picture.set_image(image)
            tile.caption.setText(caption)
            tile.setToolTip(caption)
        self.captions = list(captions)

    def set_caption(self, index: int, caption: str) -> None:
        """Change one tile's caption (live views: no other tile is redrawn)."""
        tile = self._tiles[index]
        tile.caption.setText(caption)
        tile.setToolTip(caption)
        self.captions[index] = caption

    def set_marked(
        self, marks: Iterable[int] | dict[int, str], color: str = "#9ec5fe"
    ) -> None:
        """Highlight tiles with a background: indices (one colour) or a
        mapping index → colour (e.g. selected, focused, fooled)."""
        colors = dict(marks) if isinstance(marks, dict) else dict.fromkeys(marks, color)
        self.marked = set(colors)
        # Restyle only tiles whose mark changed (live views call this often).
        changed = {i for i in set(colors) | set(self._marks)
                   if colors.get(i) != self._marks.get(i)}
        self._marks = colors
        for i, tile in enumerate(self._tiles):
            if i not in changed:
                continue
            tile.setAutoFillBackground(i in colors)
            if i in colors:
                palette = tile.palette()
                palette.setColor(QPalette.ColorRole.Window, QColor(colors[i]))
                tile.setPalette(palette)
