"""The data-set registry: names, descriptions and one ``load`` for every kind."""

from __future__ import annotations

import os
from collections.abc import Callable

from torch.utils.data import Dataset

from explorer.core.data.base import DataError, DataInfo
from explorer.core.data.builtin import FMNIST_MINI, load_fmnist_mini
from explorer.core.data.cifar import load_cifar10
from explorer.core.data.downloads import download as download_job
from explorer.core.data.folder import FOLDER_INFO, load_image_folder
from explorer.core.data.natural import NATURAL_PATCHES, load_natural_patches
from explorer.core.data.paths import require_root
from explorer.core.data.torchvision_sets import (
    TORCHVISION_INFOS,
    load_mnist_like,
    load_svhn,
)
from explorer.core.data.toy import TOY_INFOS, make_toy
from explorer.core.jobs import run_to_end

Root = str | os.PathLike[str] | None

_INFOS: dict[str, DataInfo] = {
    FMNIST_MINI.name: FMNIST_MINI,
    NATURAL_PATCHES.name: NATURAL_PATCHES,
    **TORCHVISION_INFOS,
    FOLDER_INFO.name: FOLDER_INFO,
    **TOY_INFOS,
}

_FILE_LOADERS: dict[str, Callable[[DataInfo, str, Root], Dataset]] = {
    "mnist": load_mnist_like,
    "fashion-mnist": load_mnist_like,
    "cifar10": load_cifar10,
    "svhn": load_svhn,
}


def names() -> list[str]:
    """Registered data sets: the built-in ones first, then files, folder, toys."""
    return list(_INFOS)


def info(name: str) -> DataInfo:
    try:
        return _INFOS[name]
    except (KeyError, TypeError):
        raise DataError(
            f"unknown data set {name!r}; known: {', '.join(_INFOS)}"
        ) from None


def load(
    name: str,
    split: str = "test",
    *,
    root: Root = None,
    download: bool = False,
    **params: object,
) -> Dataset:
    """Load data set ``name``: a Dataset of (x float32 in [0, 1], int label).

    Every result has ``.classes`` and ``.info``, and ``as_tensors(start, stop)``.
    ``download=True`` fetches a torchvision set into ``root`` first (blocking;
    use :func:`explorer.core.data.download` as a job to show progress).
    """
    meta = info(name)
    if split not in meta.splits:
        raise DataError(
            f"{name} has no split {split!r}; choose one of: {', '.join(meta.splits)}"
        )
    if params and meta.kind in ("builtin", "natural", "torchvision"):
        raise DataError(f"{name} takes no parameters, got {', '.join(sorted(params))}")
    if meta.kind == "builtin":
        return load_fmnist_mini(split)
    if meta.kind == "natural":
        return load_natural_patches(split)
    if meta.kind == "toy":
        return make_toy(name, split, **params)
    if meta.kind == "folder":
        return load_image_folder(split, root, **params)
    loader = _FILE_LOADERS[name]
    if not download:
        return loader(meta, split, root)
    if root is None:
        require_root(meta, None, "a folder to download into")
    try:
        return loader(meta, split, root)
    except DataError:
        # Missing or unusable files: fetch them (only what fails MD5), then retry.
        splits = (split,) if name == "svhn" else None
        run_to_end(download_job(name, root, splits=splits))  # type: ignore[arg-type]
        return loader(meta, split, root)
