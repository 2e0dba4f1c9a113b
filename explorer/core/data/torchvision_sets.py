"""MNIST, Fashion-MNIST, CIFAR-10 and SVHN read from a user's folder by torchvision.

torchvision's own dataset classes read the files; this module checks the
folder first and turns every failure into a :class:`DataError` that names the
file and the problem. The decoded uint8 arrays are then wrapped in an
:class:`ArrayDataset` (the same x = pixels / 255 as ``ToTensor``), which is
much faster than converting one PIL image per item.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from explorer.core.data import matfile
from explorer.core.data.base import ArrayDataset, DataError, DataInfo
from explorer.core.data.builtin import FMNIST_CLASSES
from explorer.core.data.idx import IdxError, read_idx
from explorer.core.data.paths import missing_file, require_root, strip_inner
from explorer.core.fileio import PARSE_ERRORS, atomic_write_bytes, reason
from explorer.core.lazy import LazyModule

tvd = LazyModule("torchvision.datasets")

# What torchvision and scipy raise on files they cannot parse.
READ_ERRORS = PARSE_ERRORS

_DIGITS = tuple(str(i) for i in range(10))

TORCHVISION_INFOS = {
    "mnist": DataInfo(
        "mnist", "MNIST", "torchvision", _DIGITS, (1, 28, 28), ("test", "train"),
        needs_root=True, downloadable=True, mean=(0.1307,), std=(0.3081,),
        description="Handwritten digits, 28×28 grayscale; 60,000 train / 10,000 "
        "test. Files: <folder>/MNIST/raw/*-idx?-ubyte[.gz].",
    ),
    "fashion-mnist": DataInfo(
        "fashion-mnist", "Fashion-MNIST", "torchvision",
        FMNIST_CLASSES, (1, 28, 28), ("test", "train"),
        needs_root=True, downloadable=True, mean=(0.2860,), std=(0.3530,),
        description="Zalando clothing images, 28×28 grayscale; 60,000 train / "
        "10,000 test. Files: <folder>/FashionMNIST/raw/*-idx?-ubyte[.gz].",
    ),
    "cifar10": DataInfo(
        "cifar10", "CIFAR-10", "torchvision",
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck"),
        (3, 32, 32), ("test", "train"), needs_root=True, downloadable=True,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        description="Small colour photos in 10 classes, 32×32; 50,000 train / "
        "10,000 test. Files: <folder>/cifar-10-batches-py/ (python version).",
    ),
    "svhn": DataInfo(
        "svhn", "SVHN", "torchvision", _DIGITS, (3, 32, 32), ("test", "train", "extra"),
        needs_root=True, downloadable=True,
        mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
        description="Street View House Numbers, 32×32 colour digits; 73,257 train "
        "/ 26,032 test / 531,131 extra. Files: <folder>/{train,test,extra}_32x32.mat.",
    ),
}  # fmt: skip

SVHN_FILES = {split: f"{split}_32x32.mat" for split in ("train", "test", "extra")}
_MNIST_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def mnist_layout(tv_class: type) -> str:
    return (
        f"<folder>/{tv_class.__name__}/raw/"
        "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"
    )


def _ensure_unpacked(plain: Path, info: DataInfo, layout: str) -> None:
    """torchvision reads the plain IDX files; unpack a lone ``.gz`` beside them."""
    if plain.is_file():
        return
    packed = plain.with_name(plain.name + ".gz")
    if not packed.is_file():
        raise missing_file(plain, info, layout)
    try:
        data = gzip.decompress(packed.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{packed}: not a readable gzip file ({reason(exc)})") from None
    try:
        atomic_write_bytes(plain, data)
    except OSError as exc:
        raise DataError(
            f"{packed}: cannot unpack it beside itself ({reason(exc)}); unpack it "
            f"by hand to {plain.name}"
        ) from None


def _diagnose_idx(files: dict[str, Path], title: str, exc: Exception) -> DataError:
    """Find which IDX file torchvision choked on, and why."""
    for kind, path in files.items():
        try:
            array = read_idx(path)
        except IdxError as err:
            return DataError(f"{err} ({title})")
        want = 3 if kind == "images" else 1
        if array.dtype != np.uint8 or array.ndim != want:
            return DataError(
                f"{path}: expected {kind} as uint8 with {want} dimension(s), found "
                f"{array.dtype} with shape {array.shape}"
            )
    names = ", ".join(str(p) for p in files.values())
    return DataError(f"{title}: torchvision could not read {names} ({reason(exc)})")


def load_mnist_like(
    info: DataInfo, split: str, root: str | os.PathLike[str] | None
) -> ArrayDataset:
    tv_class = getattr(tvd, _MNIST_CLASSES[info.name])
    layout = mnist_layout(tv_class)
    base = strip_inner(require_root(info, root, layout), tv_class.__name__, "raw")
    raw = base / tv_class.__name__ / "raw"
    for filename, _md5 in tv_class.resources:  # torchvision wants all four files
        _ensure_unpacked(raw / filename.removesuffix(".gz"), info, layout)
    prefix = "train" if split == "train" else "t10k"
    files = {
        "images": raw / f"{prefix}-images-idx3-ubyte",
        "labels": raw / f"{prefix}-labels-idx1-ubyte",
    }
    try:
        ds = tv_class(str(base), train=split == "train", download=False)
    except READ_ERRORS as exc:
        raise _diagnose_idx(files, info.title, exc) from None
    images = ds.data.numpy()
    labels = ds.targets.numpy()
    if images.shape[1:] != (28, 28):
        raise DataError(
            f"{files['images']}: images are {images.shape[1]}×{images.shape[2]}, "
            f"{info.title} images must be 28×28"
        )
    _check_labels(labels, len(images), files["labels"], files["images"])
    return ArrayDataset(images[:, None], labels, info.classes, info)


def _check_labels(
    labels: np.ndarray, n: int, label_file: Path, image_file: Path
) -> None:
    if len(labels) != n:
        raise DataError(
            f"{label_file}: {len(labels)} labels but {image_file.name} has {n} images"
        )
    if n and (labels.min() < 0 or labels.max() > 9):
        raise DataError(
            f"{label_file}: labels must be 0..9, found {labels.min()}..{labels.max()}"
        )


def load_svhn(
    info: DataInfo, split: str, root: str | os.PathLike[str] | None
) -> ArrayDataset:
    layout = "<folder>/{train,test,extra}_32x32.mat"
    base = require_root(info, root, layout)
    path = base / SVHN_FILES[split]
    if not path.is_file():
        raise missing_file(path, info, layout)
    # Our own reader, not torchvision's (scipy.io.loadmat): see matfile.py.
    arrays = matfile.load_arrays(path, ("X", "y"))
    x, y = arrays["X"], arrays["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(
            f"{path}: X must be uint8 images of 32×32×3 (stored as 32,32,3,N); found "
            f"{x.dtype} with shape {x.shape}"
        )
    images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)))  # as torchvision
    labels = y.astype(np.int64).reshape(-1)
    labels[labels == 10] = 0  # SVHN writes the digit 0 as label 10
    _check_labels(labels, len(images), path, path)
    return ArrayDataset(images, labels, info.classes, info)
