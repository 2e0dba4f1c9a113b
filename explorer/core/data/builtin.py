"""The bundled offline set: a class-balanced Fashion-MNIST subset (package data
in explorer/resources/)."""

from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from explorer.core.data.base import ArrayDataset, DataError, DataInfo
from explorer.core.fileio import reason
from explorer.core.resources import resource_path

FMNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

FILENAME = "fashion-mnist-mini.npz"
REBUILD_HINT = "rebuild it with: python scripts/make_fmnist_mini.py"

FMNIST_MINI = DataInfo(
    name="fashion-mnist-mini",
    title="Fashion-MNIST mini (built-in)",
    kind="builtin",
    classes=FMNIST_CLASSES,
    shape=(1, 28, 28),
    splits=("test", "train"),
    mean=(0.2860,),
    std=(0.3530,),
    description=(
        "A class-balanced subset of Fashion-MNIST bundled with the app: 6,000 "
        "training images (600 per class) and 1,000 test images (100 per class), "
        "28×28 grayscale. Works offline."
    ),
)


@lru_cache(maxsize=2)
def _read_npz(path: Path, mtime_ns: int) -> dict[str, np.ndarray]:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        # Our own handle: np.load leaks its file when the zip is corrupt.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; {REBUILD_HINT}")
            arrays = {k: npz[k] for k in keys}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(
            f"{path}: built-in data file not found; {REBUILD_HINT}"
        ) from None
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        # TypeError: a bare .npy file is not a context manager like an npz.
        raise DataError(
            f"{path}: built-in data file is corrupt ({reason(exc)}); {REBUILD_HINT}"
        ) from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(
                f"{path}: x_{split} should be uint8 (N, 28, 28), got {x.dtype} "
                f"{x.shape}; {REBUILD_HINT}"
            )
        if y.shape != (len(x),):
            raise DataError(
                f"{path}: y_{split} has shape {y.shape}, expected ({len(x)},); "
                f"{REBUILD_HINT}"
            )
    return arrays


def load_fmnist_mini(split: str) -> ArrayDataset:
    path = resource_path(FILENAME)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise DataError(
            f"{path}: built-in data file not found; {REBUILD_HINT}"
        ) from None
    arrays = _read_npz(path, mtime)
    images = arrays[f"x_{split}"][:, None, :, :]
    return ArrayDataset(images, arrays[f"y_{split}"], FMNIST_CLASSES, FMNIST_MINI)
