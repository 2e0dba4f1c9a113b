"""CIFAR-10 (python version) from ``<folder>/cifar-10-batches-py``.

The batches are pickles, and a pickle can run code. Before torchvision opens
them, each file is read once with an unpickler that only accepts the few NumPy
names an array needs, and its contents are checked (keys, shapes, labels).
"""

from __future__ import annotations

import functools
import io
import os
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from explorer.core.data.base import ArrayDataset, DataError, DataInfo
from explorer.core.data.paths import missing_file, require_root, strip_inner
from explorer.core.data.torchvision_sets import READ_ERRORS, tvd
from explorer.core.fileio import reason

LAYOUT = (
    "<folder>/cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta"
)

_ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
})  # fmt: skip


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR batch holds only arrays, "
                "lists and strings"
            )
        return super().find_class(module, name)


def _safe_load(path: Path) -> Any:
    try:
        # From memory: a damaged frame length then reads past the end
        # ("truncated") instead of asking the file for gigabytes.
        raw = io.BytesIO(path.read_bytes())
        return _ArrayOnlyUnpickler(raw, encoding="latin1").load()
    except READ_ERRORS as exc:
        raise DataError(
            f"{path}: not a CIFAR-10 python batch (pickle) file ({reason(exc)})"
        ) from None


def _check_batch(path: Path) -> int:
    entry = _safe_load(path)
    if not isinstance(entry, dict) or "data" not in entry:
        raise DataError(f"{path}: not a CIFAR-10 batch (no 'data' entry)")
    data = entry["data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
    ):
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(
            f"{path}: 'data' must be uint8 of shape (N, 3072) for 3×32×32 images, "
            f"found {getattr(data, 'dtype', '')} {shape}"
        )
    labels = entry.get("labels", entry.get("fine_labels"))
    if labels is None:
        raise DataError(f"{path}: not a CIFAR-10 batch (no 'labels' entry)")
    labels = np.asarray(labels)
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {labels.size} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(
            f"{path}: labels must be 0..9, found {labels.min()}..{labels.max()}"
        )
    return len(data)


def _check_meta(path: Path) -> None:
    meta = _safe_load(path)
    names = meta.get(tvd.CIFAR10.meta["key"]) if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        raise DataError(f"{path}: expected a list of 10 'label_names'")


@functools.cache
def _cifar10_files() -> type:
    """torchvision's CIFAR10 checking presence only; contents are checked above."""

    class CIFAR10Files(tvd.CIFAR10):
        train_list: ClassVar = [[name, None] for name, _ in tvd.CIFAR10.train_list]
        test_list: ClassVar = [[name, None] for name, _ in tvd.CIFAR10.test_list]
        meta: ClassVar = {**tvd.CIFAR10.meta, "md5": None}

    return CIFAR10Files


def load_cifar10(
    info: DataInfo, split: str, root: str | os.PathLike[str] | None
) -> ArrayDataset:
    base = strip_inner(require_root(info, root, LAYOUT), tvd.CIFAR10.base_folder)
    folder = base / tvd.CIFAR10.base_folder
    # torchvision insists on every batch being present, whichever split is read.
    wanted = [name for name, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list]
    for name in [*wanted, tvd.CIFAR10.meta["filename"]]:
        if not (folder / name).is_file():
            raise missing_file(folder / name, info, LAYOUT)
    split_list = tvd.CIFAR10.train_list if split == "train" else tvd.CIFAR10.test_list
    for name, _md5 in split_list:
        _check_batch(folder / name)
    _check_meta(folder / tvd.CIFAR10.meta["filename"])
    try:
        ds = _cifar10_files()(str(base), train=split == "train", download=False)
    except READ_ERRORS as exc:
        raise DataError(
            f"{folder}: torchvision could not read CIFAR-10 ({reason(exc)})"
        ) from None
    images = np.ascontiguousarray(np.asarray(ds.data).transpose(0, 3, 1, 2))
    classes = tuple(str(c) for c in ds.classes)
    return ArrayDataset(images, np.asarray(ds.targets), classes, info)
