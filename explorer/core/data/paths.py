"""Checks on the folder a user picked for a file-based data set."""

from __future__ import annotations

import os
from pathlib import Path

from explorer.core.data.base import DataError, DataInfo


def require_root(
    info: DataInfo, root: str | os.PathLike[str] | None, layout: str
) -> Path:
    """The chosen folder as a Path, or a DataError saying what to choose.

    ``layout`` describes where the files must be, for the message.
    """
    if root is None or str(root).strip() == "":
        raise DataError(
            f"{info.title} is read from a folder on your computer: choose the folder "
            f"that holds its files ({layout})"
            + (", or download it there first" if info.downloadable else "")
        )
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path}: folder not found (expected {layout})")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder (expected {layout})")
    return path


def strip_inner(root: Path, *inner: str) -> Path:
    """Accept a pick one or more levels inside the expected layout.

    With ``inner = ("FashionMNIST", "raw")``, picking ``.../FashionMNIST`` or
    ``.../FashionMNIST/raw`` gives back ``...`` -- the root torchvision wants.
    """
    for depth in range(len(inner), 0, -1):
        tail = inner[:depth]
        parts = root.parts
        if len(parts) > depth and tuple(parts[-depth:]) == tail:
            return root.parents[depth - 1]
    return root


def missing_file(path: Path, info: DataInfo, layout: str) -> DataError:
    hint = " or download it" if info.downloadable else ""
    return DataError(
        f"{path}: file not found; {info.title} needs {layout}. Choose the folder "
        f"that holds them{hint}."
    )
