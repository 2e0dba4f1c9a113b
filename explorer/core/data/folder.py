"""A folder of the user's own images: class sub-folders, or one flat class.

Folders as people have them: files that are not images by extension
(``notes.txt``, ``Thumbs.db``) and hidden files (``.DS_Store``) are ignored,
as torchvision's ``ImageFolder`` does. Every image is decoded once at load
time (JPEGs at reduced scale), and those that cannot be read are skipped and
named in ``skipped_files``; pixels are decoded again, converted and resized
to the requested C×H×W when an item is read.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from explorer.core.data.base import DataError, DataInfo
from explorer.core.data.images import (
    ImageFileError,
    is_image_name,
    read_chw,
    read_image,
)
from explorer.core.data.paths import require_root
from explorer.core.params import Param, ParamError, validate

LAYOUT = "image files, or one sub-folder of images per class"
SKIPPED_SHOWN = 3  # skipped files named in a message before "and N more"

FOLDER_INFO = DataInfo(
    name="image-folder",
    title="Image folder",
    kind="folder",
    classes=(),
    shape=(1, 28, 28),
    splits=("test", "train"),
    needs_root=True,
    mean=(0.5,),
    std=(0.5,),
    description=(
        "Your own images (png, jpg, bmp, ...). Sub-folders become classes (sorted "
        "by name); a flat folder is one class. If the folder has 'train' and 'test' "
        "sub-folders, each split reads its own. Images are converted and resized "
        "to channels × height × width."
    ),
    params=(
        Param("channels", int, 1, "1 = grayscale, 3 = RGB", choices=(1, 3)),
        Param(
            "height", int, 28, "image height after resizing", minimum=1, maximum=2048
        ),
        Param("width", int, 28, "image width after resizing", minimum=1, maximum=2048),
    ),
)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        f for f in folder.iterdir()
        if _visible(f) and is_image_name(f) and f.is_file()
    )


def _scan(root: Path) -> list[tuple[str, list[Path]]]:
    """``(class name, image files)`` per class, empty classes left out."""
    try:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))
        if subdirs:
            groups = [(d.name, _images_in(d)) for d in subdirs]
        else:
            groups = [(root.name, _images_in(root))]
    except OSError as exc:
        why = exc.strerror or exc
        raise DataError(f"{root}: cannot list the folder ({why})") from None
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        raise DataError(f"{root}: the folder has no images (expected {LAYOUT})")
    return groups


def _readable(
    groups: list[tuple[str, list[Path]]], channels: int, size: tuple[int, int]
) -> tuple[list[Path], list[int], tuple[str, ...], tuple[ImageFileError, ...]]:
    """Decode each image once; skip (and report) those that cannot be read."""
    paths: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    skipped: list[ImageFileError] = []
    for name, files in groups:
        good = []
        for path in files:
            try:
                read_image(path, channels, size)
            except ImageFileError as exc:
                skipped.append(exc)
            else:
                good.append(path)
        if good:
            paths.extend(good)
            labels.extend([len(classes)] * len(good))
            classes.append(name)
    return paths, labels, tuple(classes), tuple(skipped)


def describe_skipped(errors: tuple[ImageFileError, ...]) -> str:
    """"2 unreadable images skipped: a.png (…), b.jpg (…)" for messages."""
    shown = "; ".join(str(e) for e in errors[:SKIPPED_SHOWN])
    more = len(errors) - SKIPPED_SHOWN
    tail = f"; and {more} more" if more > 0 else ""
    noun = "image" if len(errors) == 1 else "images"
    return f"{len(errors)} unreadable {noun} skipped: {shown}{tail}"


class ImageFolderDataset(Dataset):
    """Images decoded on access; ``as_tensors`` decodes a whole slice."""

    def __init__(
        self,
        paths: list[Path],
        labels: list[int],
        classes: tuple[str, ...],
        info: DataInfo,
        skipped: tuple[ImageFileError, ...] = (),
    ) -> None:
        self.paths = paths
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.classes = classes
        self.info = info
        self.skipped = skipped  # unreadable images left out, with the reasons

    @property
    def skipped_files(self) -> list[str]:
        """The paths of the images left out because they could not be read."""
        return [str(e.path) for e in self.skipped]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._decode(self.paths[index]), int(self.labels[index])

    def as_tensors(
        self, start: int = 0, stop: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        picked = self.paths[start:stop]
        c, h, w = self.info.shape
        x = (
            torch.stack([self._decode(p) for p in picked])
            if picked
            else torch.empty(0, c, h, w)
        )
        return x, self.labels[start:stop].clone()

    def _decode(self, path: Path) -> torch.Tensor:
        # Readable at load time; a file changed since then says so here.
        return torch.from_numpy(read_chw(path, self.info.shape))


def load_image_folder(
    split: str, root: str | os.PathLike[str] | None, **params: object
) -> ImageFolderDataset:
    try:
        values = validate(FOLDER_INFO.params, params)
    except ParamError as exc:
        raise DataError(f"image-folder: {exc}") from None
    base = require_root(FOLDER_INFO, root, LAYOUT)
    if (base / "train").is_dir() and (base / "test").is_dir():
        base = base / split
    c = values["channels"]
    size = (values["width"], values["height"])
    paths, labels, classes, skipped = _readable(_scan(base), c, size)
    if not paths:
        raise DataError(f"{base}: no readable images ({describe_skipped(skipped)})")
    info = dataclasses.replace(
        FOLDER_INFO,
        title=f"Image folder {base.name}",
        classes=classes,
        shape=(c, values["height"], values["width"]),
        mean=(0.5,) * c,
        std=(0.5,) * c,
    )
    return ImageFolderDataset(paths, labels, classes, info, skipped)
