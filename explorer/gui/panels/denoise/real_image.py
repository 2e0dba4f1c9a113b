"""The real noisy image for the Denoiser Lab: a file, an optional clean
reference of the same size, and what the lab will make of them.

Only file headers are read here (the UI thread); the pixels are read by the
attack job. Both paths are kept in the settings between launches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from explorer.core.denoise import DenoiserError, real
from explorer.core.denoise.registry import size_multiple
from explorer.gui.panels.denoise.denoiser_list import DenoiserList

IMAGE_FILTER = ("Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif);;"
                "All files (*)")
NOISY_KEY = "denoise/real/noisy"
REFERENCE_KEY = "denoise/real/reference"
NO_REFERENCE_TIP = ("A real noisy image has no clean ground truth, so PSNR and "
                    "SSIM against a clean image are not computed. Choose a clean "
                    "reference image of the same size to compute them.")
ATTACK_TIP = ("Without a clean image ObsAtk attacks the deviation from the "
              "unattacked reconstruction: it maximises ||f(v+d) − f(v)||² "
              "(from a random zero-mean start: at d = 0 that objective and its "
              "gradient are zero).")
REFERENCE_FREE_TIP = f"{NO_REFERENCE_TIP}\n{ATTACK_TIP}"
ERROR_STYLE = "color: #b00020;"


class RealImageBox(QWidget):
    """``paths()`` gives the noisy file and the reference (or ``None``);
    ``problem()`` says why they cannot be used yet."""

    changed = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.noisy_edit, self.noisy_button = self._file_row(
            "no file chosen", "The real noisy image: the observation v")
        self.ref_edit, self.ref_button = self._file_row(
            "none: PSNR/SSIM show —", "Optional: the same scene without noise, "
            "the same size, to compute PSNR and SSIM")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Forget the clean reference")
        self.noisy_button.clicked.connect(self.choose_noisy)
        self.ref_button.clicked.connect(self.choose_reference)
        self.clear_button.clicked.connect(self.clear_reference)
        self.info = QLabel(wordWrap=True, styleSheet="font-size: 10px;")
        self.error = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("noisy image"), 0, 0)
        grid.addWidget(self.noisy_edit, 0, 1)
        grid.addWidget(self.noisy_button, 0, 2)
        grid.addWidget(QLabel("clean (optional)"), 1, 0)
        grid.addWidget(self.ref_edit, 1, 1)
        grid.addWidget(self.ref_button, 1, 2)
        grid.addWidget(self.clear_button, 2, 2)
        grid.addWidget(self.info, 2, 0, 1, 2)
        grid.addWidget(self.error, 3, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self._noisy = str(settings.value(NOISY_KEY, "") or "")
        self._reference = str(settings.value(REFERENCE_KEY, "") or "")
        self._shape: tuple[int, int] | None = None
        self._problem: str | None = None
        self._check()

    def _file_row(self, placeholder: str, tip: str) -> tuple[QLineEdit, QPushButton]:
        edit = QLineEdit(readOnly=True, placeholderText=placeholder, toolTip=tip)
        button = QPushButton("Choose…", toolTip=tip)
        return edit, button

    # -- choosing ---------------------------------------------------------------
    def _start_dir(self) -> str:
        return str(Path(self._noisy).parent) if self._noisy else ""

    @Slot()
    def choose_noisy(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Real noisy image",
                                              self._start_dir(), IMAGE_FILTER)
        if path:
            self.set_noisy(path)

    @Slot()
    def choose_reference(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Clean reference image",
                                              self._start_dir(), IMAGE_FILTER)
        if path:
            self.set_reference(path)

    @Slot()
    def clear_reference(self) -> None:
        self.set_reference("")

    def set_noisy(self, path: str) -> None:
        self._noisy = str(path)
        self.settings.setValue(NOISY_KEY, self._noisy)
        self._check()
        self.changed.emit()

    def set_reference(self, path: str) -> None:
        self._reference = str(path)
        self.settings.setValue(REFERENCE_KEY, self._reference)
        self._check()
        self.changed.emit()

    # -- checking (headers only) ---------------------------------------------------
    def _check(self) -> None:
        self.noisy_edit.setText(self._noisy)
        self.ref_edit.setText(self._reference)
        self.noisy_edit.setToolTip(self._noisy or "no file chosen")
        self.ref_edit.setToolTip(self._reference or NO_REFERENCE_TIP)
        self.clear_button.setEnabled(bool(self._reference))
        self._shape, self._problem, info = None, None, ""
        try:
            if not self._noisy:
                raise DenoiserError("Choose a real noisy image file.")
            noisy = real.inspect(self._noisy)
            info = (f"{noisy.path.name}: {noisy.width}×{noisy.height} "
                    f"{'colour' if noisy.colour else 'gray'}")
            if max(noisy.height, noisy.width) > real.MAX_SIDE:
                info += (f"; the central {real.MAX_SIDE}×{real.MAX_SIDE} at most "
                         "is used")
            self._shape = (noisy.height, noisy.width)
            if self._reference:
                ref = real.inspect(self._reference)
                if (ref.height, ref.width) != self._shape:
                    raise DenoiserError(
                        f"{ref.path}: the clean reference is {ref.width}×"
                        f"{ref.height} but {noisy.path.name} is {noisy.width}×"
                        f"{noisy.height}; they must be the same size")
                info += f"; PSNR/SSIM against {ref.path.name}"
            else:
                info += "; no clean reference: PSNR/SSIM show —, ObsAtk vs f(v)"
        except DenoiserError as exc:
            self._problem = str(exc)
        self.info.setText(info)
        self.error.setText(self._problem or "")
        self.error.setVisible(self._problem is not None and bool(self._noisy))

    # -- reading ------------------------------------------------------------------
    def problem(self) -> str | None:
        return self._problem

    def paths(self) -> tuple[str, str | None]:
        return self._noisy, self._reference or None

    def shape_for(self, denoisers: DenoiserList) -> tuple[int, ...] | None:
        """:meth:`shape` as the first checked denoiser takes the image."""
        names = denoisers.checked()[:1]
        try:
            meta = denoisers.models(names)[names[0]].meta if names else None
        except DenoiserError:
            meta = None
        if meta is None:
            return self.shape()
        return self.shape(meta.channels, size_multiple(meta))

    def shape(self, channels: int = 1, multiple: int = 1) -> tuple[int, ...] | None:
        """C×H×W the lab will use (after the crop), for the budget's rho."""
        if self._shape is None or self._problem:
            return None
        try:
            _, _, h, w = real.crop_box(*self._shape, multiple)
        except ValueError:
            return None
        return (channels, h, w)


def summary(per_denoiser: dict[str, dict]) -> str:
    """One line per denoiser: the image as used, and how far ObsAtk (vs a
    random d of the same norm) moved the output, as RMS per pixel."""
    lines = []
    for name, res in per_denoiser.items():
        size = "×".join(map(str, res["shape"]))
        notes = "; ".join(res["notes"])
        pixels = float(np.prod(res["shape"]))
        moved = [255 * np.sqrt(res[f"deviation_{key}"][0] / pixels)
                 for key in ("attacked", "random")]
        line = (f"{name}: image {size}{f' ({notes})' if notes else ''}; ObsAtk "
                f"moved f(v) by RMS {moved[0]:.2f}/255, random d by "
                f"{moved[1]:.2f}/255")
        if "psnr_attacked" in res:
            line += (f"; PSNR {res['psnr_denoised'][0]:.2f} → "
                     f"{res['psnr_attacked'][0]:.2f} dB")
        lines.append(line + ".")
    return "\n".join(lines)
