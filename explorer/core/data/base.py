"""The data-set contract: DataInfo, DataError and the in-memory ArrayDataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from explorer.core.params import Param


class DataError(ValueError):
    """A data set cannot be found, read or used; the message says which file and why."""


@dataclass(frozen=True)
class DataInfo:
    """What the registry knows about a data set before loading it."""

    name: str
    title: str
    kind: str  # "builtin" | "natural" | "torchvision" | "folder" | "toy"
    classes: tuple[str, ...]
    shape: tuple[int, ...]  # C,H,W of one image; (2,) for toy sets
    splits: tuple[str, ...]
    needs_root: bool = False
    downloadable: bool = False
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    description: str = ""
    params: tuple[Param, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _as_tensor(array: Any) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().contiguous()
    # A copy: torch warns about (and must not share) read-only NumPy buffers.
    return torch.from_numpy(np.array(array, copy=True, order="C"))


class ArrayDataset(Dataset):
    """An in-memory data set: uint8 images (scaled by 1/255) or float features.

    ``images`` is (N, C, H, W) uint8 or float in [0, 1], or (N, D) float for toy
    sets; ``labels`` is (N,) integers. Items are converted one at a time, so the
    uint8 storage stays four times smaller than float.
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        classes: Sequence[str],
        info: DataInfo,
    ) -> None:
        x = _as_tensor(images)
        y = _as_tensor(labels).reshape(-1).to(torch.int64)
        if x.dtype != torch.uint8 and not x.is_floating_point():
            raise DataError(
                f"{info.name}: images must be uint8 or float, got {x.dtype}"
            )
        if len(x) != len(y):
            raise DataError(
                f"{info.name}: {len(x)} images but {len(y)} labels; they must match"
            )
        self.images = x if x.dtype == torch.uint8 else x.to(torch.float32)
        self.labels = y
        self.classes = tuple(classes)
        self.info = info
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
            raise DataError(
                f"{info.name}: labels must be in 0..{len(self.classes) - 1}, "
                f"found {int(y.min())}..{int(y.max())}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._to_float(self.images[index]), int(self.labels[index])

    def as_tensors(
        self, start: int = 0, stop: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole slice at once: x float32 in [0, 1], y int64."""
        return self._to_float(self.images[start:stop]), self.labels[start:stop].clone()

    def _to_float(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.to(torch.float32).div_(255.0)
        return x.clone()

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:])
        return f"ArrayDataset({self.info.name!r}, n={len(self)}, shape={shape})"
