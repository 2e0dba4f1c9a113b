"""A folder of the user's own images: class sub-folders, or one flat class.

Every file is opened lazily at load time (PIL reads only the header), so a
non-image is reported at once without decoding a large folder; pixels are
decoded, converted and resized to the requested C×H×W when an item is read.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from explorer.core.data.base import DataError, DataInfo
from explorer.core.data.paths import require_root
from explorer.core.params import Param, ParamError, validate

LAYOUT = "image files, or one sub-folder of images per class"

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


def _scan(root: Path) -> tuple[list[Path], list[int], tuple[str, ...]]:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))
    if subdirs:
        groups = [
            (d.name, sorted(f for f in d.iterdir() if f.is_file() and _visible(f)))
            for d in subdirs
        ]
    else:
        groups = [
            (
                root.name,
                sorted(f for f in root.iterdir() if f.is_file() and _visible(f)),
            )
        ]
    groups = [(name, files) for name, files in groups if files]
    if not groups:
        raise DataError(f"{root}: the folder is empty (expected {LAYOUT})")
    paths, labels = [], []
    for label, (_name, files) in enumerate(groups):
        paths.extend(files)
        labels.extend([label] * len(files))
    return paths, labels, tuple(name for name, _ in groups)


def _check_image(path: Path) -> None:
    try:
        with Image.open(path) as img:
            if img.width < 1 or img.height < 1:
                raise DataError(f"{path}: the image has no pixels")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable image file ({exc})") from None


class ImageFolderDataset(Dataset):
    """Images decoded on access; ``as_tensors`` decodes a whole slice."""

    def __init__(
        self,
        paths: list[Path],
        labels: list[int],
        classes: tuple[str, ...],
        info: DataInfo,
    ) -> None:
        self.paths = paths
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.classes = classes
        self.info = info

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
        c, h, w = self.info.shape
        try:
            with Image.open(path) as img:
                img = img.convert("L" if c == 1 else "RGB")
                if img.size != (w, h):
                    img = img.resize((w, h), Image.Resampling.BILINEAR)
                array = np.array(img, dtype=np.uint8, copy=True)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"{path}: cannot decode the image ({exc})") from None
        x = torch.from_numpy(array).to(torch.float32).div_(255.0)
        return x.unsqueeze(0) if c == 1 else x.permute(2, 0, 1).contiguous()


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
    paths, labels, classes = _scan(base)
    for path in paths:
        _check_image(path)
    c = values["channels"]
    info = dataclasses.replace(
        FOLDER_INFO,
        title=f"Image folder {base.name}",
        classes=classes,
        shape=(c, values["height"], values["width"]),
        mean=(0.5,) * c,
        std=(0.5,) * c,
    )
    return ImageFolderDataset(paths, labels, classes, info)
