"""Picture files: one reader for every place the app opens an image.

Image folders, the Attack Lab's "open image", and the Denoiser Lab's real
photos all read through here, so every damaged, truncated or foreign file
gives the same one-line :class:`ImageFileError` naming the file, whatever
Pillow's decoder raised. A picture of more than Pillow's decompression-bomb
limit (about 89 megapixels) is refused rather than decoded.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from explorer.core import quiet
from explorer.core.data.base import DataError

# What torchvision's ImageFolder accepts, by extension (lower case).
IMAGE_SUFFIXES = frozenset({
    ".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp",
})  # fmt: skip
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "P;L"})

# What Pillow's decoders raise on damaged data (found by the damaged-file tests).
_DECODE_ERRORS = (
    OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error,
    IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError,
    UnidentifiedImageError, Image.DecompressionBombError,
)  # fmt: skip


class ImageFileError(DataError):
    """A picture file cannot be read; the message names the file and why."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = Path(path)
        self.why = why


def is_image_name(path: str | os.PathLike[str]) -> bool:
    """An image by its extension (as torchvision's ImageFolder decides)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@contextlib.contextmanager
def opened(path: str | os.PathLike[str]) -> Iterator[Image.Image]:
    """``Image.open`` whose failures, in opening or decoding, name the file."""
    path = Path(path)
    try:
        with quiet.guarded():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    except ImageFileError:
        raise
    except FileNotFoundError:
        raise ImageFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageFileError(path, "is a folder, not an image") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageFileError(
            path, f"the image is too large to open (over "
            f"{Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels)"
        ) from None
    except UnidentifiedImageError:
        raise ImageFileError(path, "not an image file Pillow can read") from None
    except _DECODE_ERRORS as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ImageFileError(path, f"damaged or unreadable image ({reason})") from None


def header(path: str | os.PathLike[str]) -> tuple[int, int, bool]:
    """``(width, height, colour)`` from the header only (fast)."""
    with opened(path) as img:
        width, height = img.size
        colour = img.mode not in GRAY_MODES
    if width < 1 or height < 1:
        raise ImageFileError(path, "the image has no pixels")
    return width, height, colour


def read_image(
    path: str | os.PathLike[str],
    channels: int,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode to uint8 ``(H, W)`` (1 channel) or ``(H, W, 3)``.

    ``size`` is ``(width, height)``: the picture is resized to it (bilinear);
    JPEGs are then decoded at a reduced scale first, which is much faster.
    """
    mode = "L" if channels == 1 else "RGB"
    with opened(path) as img:
        if img.width < 1 or img.height < 1:
            raise ImageFileError(path, "the image has no pixels")
        if size is not None and img.format == "JPEG":
            img.draft(mode, size)
        img = img.convert(mode)
        if size is not None and img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        return np.array(img, dtype=np.uint8, copy=True)


def read_chw(
    path: str | os.PathLike[str], shape: tuple[int, int, int]
) -> np.ndarray:
    """A picture as float32 C×H×W in [0, 1] of ``shape`` (converted, resized)."""
    c, h, w = shape
    array = read_image(path, c, (w, h)).astype(np.float32) / 255.0
    return array[None] if c == 1 else np.ascontiguousarray(array.transpose(2, 0, 1))
