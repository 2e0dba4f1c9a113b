"""Tiles that keep their shape: an image that keeps its aspect ratio at any
widget size, and a caption that elides instead of running into its neighbour.

Every page that tiles small images (data grids, adversarial strips, denoiser
rows, example matrices) draws them with these two, so a 28×28 image stays
square and crisp when its cell is stretched, squeezed or resized.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


def to_qimage(array: np.ndarray) -> QImage:
    """HxW or HxWxC float array in [0, 1] (or uint8) → an owned QImage."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    if a.ndim == 2:
        return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    if a.shape[2] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {a.shape[2]}")
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def chw_to_hwc(x: np.ndarray) -> np.ndarray:
    """C×H×W (as models take them) → H×W×C (as images are shown)."""
    return np.transpose(x, (1, 2, 0)) if x.ndim == 3 else x


# Images this small or smaller are enlarged pixel by pixel (a 28×28 digit
# smoothed up to 84 px is a blur); larger ones are scaled smoothly.
CRISP_UP_TO = 128
MIN_LETTERS = 3  # a squeezed caption still shows this many letters and "…"


def fitted_rect(image: QSize, room: QRect) -> QRect:
    """The largest rectangle of ``image``'s shape centred in ``room``."""
    if image.isEmpty() or room.isEmpty():
        return QRect()
    size = image.scaled(room.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = room.x() + (room.width() - size.width()) // 2
    y = room.y() + (room.height() - size.height()) // 2
    return QRect(x, y, size.width(), size.height())


class AspectImage(QWidget):
    """Shows one image as large as its rectangle allows, never distorted.

    ``preferred`` is the side the layout asks for; the widget may be given
    any other size (fixed by the caller, or stretched by the layout), and the
    image is then scaled to fit and centred, with the spare room left blank.
    """

    def __init__(self, preferred: int = 48, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._preferred = preferred
        self._source = QPixmap()
        self._shown = QPixmap()
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setMinimumSize(min(16, preferred), min(16, preferred))

    # -- content ----------------------------------------------------------------
    def set_image(self, image: np.ndarray | QImage) -> None:
        """H×W(×C) array in [0, 1] (or uint8), or a QImage."""
        qimage = image if isinstance(image, QImage) else to_qimage(image)
        self._source = QPixmap.fromImage(qimage)
        self._rescale()
        self.update()

    def clear(self) -> None:
        self._source = QPixmap()
        self._shown = QPixmap()
        self.update()

    def source_size(self) -> QSize:
        """The image's own size in pixels (empty when there is none)."""
        return self._source.size()

    def pixmap(self) -> QPixmap:
        """The image as drawn now (null when there is none)."""
        return self._shown

    def image_rect(self) -> QRect:
        """Where the image is drawn, in the widget's coordinates."""
        return fitted_rect(self._source.size(), self.rect())

    # -- Qt -----------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(self._preferred, self._preferred)

    def resizeEvent(self, event) -> None:
        self._rescale()
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:
        if self._shown.isNull():
            return
        painter = QPainter(self)
        painter.drawPixmap(self.image_rect().topLeft(), self._shown)
        painter.end()

    def _rescale(self) -> None:
        if self._source.isNull():
            self._shown = QPixmap()
            return
        target = self.image_rect().size()
        small = max(self._source.width(), self._source.height()) <= CRISP_UP_TO
        mode = (Qt.TransformationMode.FastTransformation if small
                else Qt.TransformationMode.SmoothTransformation)
        self._shown = self._source.scaled(
            target, Qt.AspectRatioMode.IgnoreAspectRatio, mode)  # target has its shape


class ElidedLabel(QLabel):
    """A caption that shortens each of its lines with "…" to fit its width;
    the full text is its tooltip (unless the caller sets another)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full = ""
        self._own_tip = True
        self._mode = mode  # where the "…" goes
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        if self._own_tip:
            super().setToolTip(text)
        self._elide()

    def setToolTip(self, tip: str) -> None:
        self._own_tip = False
        super().setToolTip(tip)

    def clear(self) -> None:
        self.setText("")

    def full_text(self) -> str:
        return self._full

    def is_elided(self) -> bool:
        return self.text() != self._full

    # It asks for its whole text but gives way down to a few letters and "…",
    # so a long caption never pushes its neighbours away, and a short one
    # beside it ("Coat") keeps all of its text.
    def minimumSizeHint(self) -> QSize:
        lines = self._full.split("\n")
        stub = max(lines, key=len)[:MIN_LETTERS] + "…"
        wide = min(self._text_width(lines), self.fontMetrics().horizontalAdvance(stub))
        return QSize(wide + self._padding(), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        # 2 px of slack: elidedText measures a little wider than
        # horizontalAdvance at some sizes and would cut a text that fits
        wide = self._text_width(self._full.split("\n")) + 2
        return QSize(wide + self._padding(), super().sizeHint().height())

    def _text_width(self, lines: list[str]) -> int:
        return max(self.fontMetrics().horizontalAdvance(line) for line in lines)

    def _padding(self) -> int:
        margins = self.contentsMargins()
        return margins.left() + margins.right() + 2 * self.margin()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._elide()  # a style sheet's font arrives when the label is polished

    def _elide(self) -> None:
        metrics = self.fontMetrics()
        room = max(0, self.width() - self._padding())
        shown = "\n".join(metrics.elidedText(line, self._mode, room)
                          for line in self._full.split("\n"))
        if shown != super().text():
            super().setText(shown)
