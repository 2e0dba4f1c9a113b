"""One row per denoiser: clean | noisy | denoised | ObsAtk-perturbed |
denoised under attack | error map, each tile captioned with PSNR/SSIM, and a
scrubber through the attack's steps shared by all rows. For a real noisy
image without a clean reference there is no clean image: its tile stays
empty, PSNR/SSIM read "—", and the error map shows the change of the output
|f(v+d) − f(v)| that ObsAtk maximised instead.

Every snapshot is kept so the scrubber can go back; painting goes through a
single-shot timer, so the rows repaint at most ~10 times a second.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core.denoise import psnr, ssim
from explorer.core.jobs import Snapshot
from explorer.gui.widgets.aspect_image import (
    AspectImage,
    ElidedLabel,
    chw_to_hwc,
    to_qimage,
)

TILE = 84  # preferred side of a picture; it shrinks to SMALLEST in narrow windows
SMALLEST = 48
ERROR_TOP = 0.25  # error maps share this fixed scale, so rows compare
COLUMNS = ("clean x", "noisy v", "denoised f(v)", "ObsAtk v+d", "attacked f(v+d)",
           "error |f(v+d)−x|")
COLUMN_TIPS = ("the clean image", "the noisy observation", "the denoiser's output",
               "the observation plus ObsAtk's zero-mean perturbation d",
               "the denoiser's output under attack",
               "absolute error of the output under attack (max over channels)")
# (column, title, tip) when there is no clean image (see set_reference_free)
NO_REFERENCE_COLUMNS = (
    (0, "no clean image", "a real noisy image has no clean ground truth"),
    (3, "ObsAtk vs f(v)", "the observation plus ObsAtk's zero-mean perturbation d, "
     "which maximises ||f(v+d) − f(v)||²"),
    (5, "|f(v+d)−f(v)|", "how far the attack moved the output, on the error "
     "scale (max over channels)"))
NO_VALUE = "PSNR —\nSSIM —"
PAINT_MS = 100
_LUT = pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False)


def error_rgb(err: np.ndarray) -> np.ndarray:
    """H×W absolute errors → H×W×3 uint8 on the fixed inferno scale."""
    idx = np.clip(err / ERROR_TOP, 0.0, 1.0) * 255
    return _LUT[idx.astype(np.uint8)]


def quality(clean: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    return float(psnr(clean, test)[0]), float(ssim(clean, test)[0])


class _Tile(QWidget):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(1, 1, 1, 1)
        box.setSpacing(1)
        # Images keep their shape (a real image may be 40×36) whatever room
        # the window leaves the column; captions elide rather than overlap.
        self.picture = AspectImage(TILE)
        self.picture.setMinimumSize(SMALLEST, SMALLEST)
        self.caption = ElidedLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("font-size: 10px;")
        self.caption.setFixedHeight(28)  # two lines; changing text must not re-lay out
        box.addWidget(self.picture, 1)
        box.addWidget(self.caption)


def _scale_bar() -> QWidget:
    ramp = np.linspace(0, ERROR_TOP, TILE)[None, :].repeat(8, axis=0)
    bar = QLabel()
    bar.setPixmap(QPixmap.fromImage(to_qimage(error_rgb(ramp))))
    low, high = QLabel("0"), QLabel(f"{ERROR_TOP:g}")
    for label in (low, high):
        label.setStyleSheet("font-size: 9px;")
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(2)
    row.addWidget(low)
    row.addWidget(bar)
    row.addWidget(high)
    out = QWidget()
    out.setLayout(row)
    out.setToolTip(f"error scale: 0 (black) to {ERROR_TOP:g} or more (yellow)")
    return out


class DenoiseRows(QWidget):
    repainted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshots: dict[str, list[Snapshot]] = {}
        self.tiles: dict[str, list[_Tile]] = {}
        self._row_widgets: list[QWidget] = []
        self._follow = True
        self.no_reference_tip = ""  # set when there is no clean image
        self.headers: list[QLabel] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAINT_MS)
        self._timer.timeout.connect(self.repaint_now)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(4)
        self.grid.setVerticalSpacing(2)
        for col, (title, tip) in enumerate(zip(COLUMNS, COLUMN_TIPS, strict=True)):
            label = ElidedLabel(title)
            label.setToolTip(f"{title}: {tip}")
            label.setStyleSheet("font-weight: 600; font-size: 10px;")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.grid.addWidget(label, 0, col + 1)
            self.headers.append(label)
        self.grid.addWidget(_scale_bar(), 1, len(COLUMNS),
                            Qt.AlignmentFlag.AlignHCenter)
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        self.scrubber.setToolTip("Step back and forth through ObsAtk's iterations")
        self.scrubber.valueChanged.connect(self._on_scrub)
        self.step_label = QLabel("no attack yet")
        self.step_label.setFixedWidth(110)
        self.image = QSpinBox()
        self.image.setRange(1, 1)
        self.image.setPrefix("image ")
        self.image.setToolTip("Which of the chosen images the rows show")
        self.image.valueChanged.connect(self.schedule)
        scrub_row = QHBoxLayout()
        scrub_row.addWidget(QLabel("ObsAtk step"))
        scrub_row.addWidget(self.scrubber, 1)
        scrub_row.addWidget(self.step_label)
        scrub_row.addWidget(self.image)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(self.grid)
        column.addLayout(scrub_row)
        self.footer = QVBoxLayout()  # room for the panel's comparison table
        column.addLayout(self.footer)
        column.addStretch(1)

    # -- feeding ------------------------------------------------------------------
    def reset(self, names: list[str], n_images: int) -> None:
        """Empty rows for these denoisers."""
        for widget in self._row_widgets:
            self.grid.removeWidget(widget)
            widget.deleteLater()
        self._row_widgets.clear()
        self.snapshots = {name: [] for name in names}
        self.tiles = {}
        for r, name in enumerate(names):
            label = QLabel(name)
            label.setWordWrap(True)
            label.setFixedWidth(96)
            label.setStyleSheet("font-weight: 600;")
            self.grid.addWidget(label, r + 2, 0)
            tiles = [_Tile(self) for _ in COLUMNS]
            for c, tile in enumerate(tiles):
                self.grid.addWidget(tile, r + 2, c + 1)
            self.tiles[name] = tiles
            self._row_widgets += [label, *tiles]
        self.image.setRange(1, max(1, n_images))
        self._follow = True
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, 0)
        self.scrubber.blockSignals(False)
        self.step_label.setText("waiting…")

    def set_reference_free(self, tip: str) -> None:
        """No clean image (``tip`` says why) or, with ``""``, the usual columns."""
        self.no_reference_tip = tip
        titles = {c: (t, why) for c, t, why in NO_REFERENCE_COLUMNS} if tip else {}
        for col, (label, title, why) in enumerate(zip(self.headers, COLUMNS,
                                                      COLUMN_TIPS, strict=True)):
            shown, tip = titles.get(col, (title, why))
            label.setText(shown)
            label.setToolTip(f"{shown}: {tip}")

    def add_snapshot(self, name: str, snap: Snapshot) -> None:
        if name not in self.snapshots:
            return
        self.snapshots[name].append(snap)
        longest = max(len(s) for s in self.snapshots.values())
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, longest - 1)
        if self._follow:
            self.scrubber.setValue(longest - 1)
        self.scrubber.blockSignals(False)
        self.schedule()

    def steps(self) -> int:
        return self.scrubber.maximum() + 1 if self.snapshots else 0

    # -- painting -----------------------------------------------------------------
    @Slot()
    def schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    @Slot(int)
    def _on_scrub(self, value: int) -> None:
        self._follow = value == self.scrubber.maximum()
        self.schedule()

    @Slot()
    def repaint_now(self) -> None:
        at, j = self.scrubber.value(), self.image.value() - 1
        for name, snaps in self.snapshots.items():
            if snaps:
                snap = snaps[min(at, len(snaps) - 1)]
                self._paint_row(name, snaps[0], snap, j)
                self.step_label.setText(snap.label or f"step {snap.step}")
        self.repainted.emit()

    def _paint_row(self, name: str, first: Snapshot, snap: Snapshot, j: int) -> None:
        clean = first.arrays["clean"][j] if "clean" in first.arrays else None
        # without a clean image, the attack's target: the unattacked output
        target = first.arrays["denoised"][j] if clean is None else clean
        denoised_err = np.abs(snap.arrays["denoised"][j] - target).max(axis=0)
        shown = (first.arrays["noisy"][j], first.arrays["denoised"][j],
                 snap.arrays["v_adv"][j], snap.arrays["denoised"][j])
        tiles = self.tiles[name]
        if clean is None:
            tiles[0].picture.clear()
        else:
            tiles[0].picture.set_image(chw_to_hwc(clean))
        tiles[0].caption.setText("reference" if clean is not None else "—")
        for tile, image in zip(tiles[1:5], shown, strict=True):
            tile.picture.set_image(chw_to_hwc(image))
            if clean is None:
                tile.caption.setText(NO_VALUE)
            else:
                p, s = quality(clean, image)
                tile.caption.setText(f"PSNR {p:.2f} dB\nSSIM {s:.3f}")
        for tile in tiles[:5]:
            tile.setToolTip(self.no_reference_tip if clean is None else "")
        tiles[5].picture.set_image(error_rgb(denoised_err))
        tiles[5].caption.setText(f"mean {denoised_err.mean():.3f}\n"
                                 f"max {denoised_err.max():.3f}")

    # -- reading (tests, the panel) -------------------------------------------------
    def captions(self, name: str) -> list[str]:
        return [t.caption.full_text() for t in self.tiles.get(name, [])]

    def caption_psnr(self, name: str, column: int) -> float:
        """The PSNR a tile's caption shows (dB)."""
        text = self.captions(name)[column]
        return float(text.split("PSNR ")[1].split(" dB")[0])
