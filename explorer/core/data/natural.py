"""``natural-patches``: grayscale patches of the photos scikit-image ships.

A denoising set (labels are all 0): 40×40 patches, DnCNN's training size,
cut on a fixed grid from photos read straight from scikit-image's package
folder (no download, so it works offline). The photos are split by photo:
no test photo, nor another view of its scene, is ever seen in training.

* train: astronaut, coffee, rocket, brick, grass, coins, moon and the left
  view of the stereo motorcycle (the right view is the same scene and is not
  used at all), patches every 20 pixels (overlapping).
* test: camera (the cameraman), chelsea (the cat; ``skimage.data.cat`` is the
  same file) and gravel: a portrait with flat sky and sharp edges, fur, and a
  fine texture, so the test covers smooth, edged and textured content that
  the training photos also have but never the same scenes. Patches every 40
  pixels (disjoint). :func:`test_photos` gives them whole.

Photos without natural content (text, page, logos, drawings, microscopy, the
mostly black Hubble field) are left out. Colour photos are converted with
Pillow's ITU-R 601 luma ("L"), so every load gives the same bytes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from explorer.core.data import images
from explorer.core.data.base import ArrayDataset, DataError, DataInfo

PATCH = 40
STRIDES = {"train": 20, "test": 40}
# photo name -> file in scikit-image's data folder
PHOTO_FILES = {
    "astronaut": "astronaut.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
    "brick": "brick.png", "grass": "grass.png", "coins": "coins.png",
    "moon": "moon.png", "motorcycle_left": "motorcycle_left.png",
    "camera": "camera.png", "chelsea": "chelsea.png", "gravel": "gravel.png",
}  # fmt: skip
PHOTOS = {
    "train": ("astronaut", "coffee", "rocket", "brick", "grass", "coins", "moon",
              "motorcycle_left"),
    "test": ("camera", "chelsea", "gravel"),
}

NATURAL_PATCHES = DataInfo(
    name="natural-patches",
    title="Natural photo patches (denoising, built-in)",
    kind="natural",
    classes=("patch",),
    shape=(1, PATCH, PATCH),
    splits=("test", "train"),
    mean=(0.45,),
    std=(0.25,),
    description=(
        "Grayscale 40×40 patches of the photos scikit-image ships, for training "
        "and testing denoisers (labels unused). Split by photo: train from "
        f"{', '.join(PHOTOS['train'])} (stride 20); test from "
        f"{', '.join(PHOTOS['test'])} (stride 40). Works offline."
    ),
)


def skimage_folder() -> Path:
    """scikit-image's package data folder (the photos it installs)."""
    try:
        import skimage.data
    except ImportError as exc:  # a core dependency; only a broken install lacks it
        raise DataError(f"natural-patches needs scikit-image ({exc})") from None
    return Path(skimage.data.__file__).parent


def photo_path(name: str) -> Path:
    if name not in PHOTO_FILES:
        raise DataError(f"unknown photo {name!r}; known: {', '.join(PHOTO_FILES)}")
    return skimage_folder() / PHOTO_FILES[name]


@lru_cache(maxsize=16)
def _photo(name: str) -> np.ndarray:
    array = images.read_image(photo_path(name), 1)
    array.setflags(write=False)
    return array


def photo(name: str) -> torch.Tensor:
    """One photo whole, grayscale float32 1×H×W in [0, 1]."""
    return torch.from_numpy(_photo(name).astype(np.float32) / 255.0)[None]


def test_photos() -> dict[str, torch.Tensor]:
    """The test photos whole (never seen in training), by name."""
    return {name: photo(name) for name in PHOTOS["test"]}


def patches(array: np.ndarray, size: int = PATCH, stride: int = PATCH) -> np.ndarray:
    """Row-major grid of ``size``×``size`` patches of an H×W array."""
    h, w = array.shape
    if h < size or w < size:
        return np.zeros((0, size, size), dtype=array.dtype)
    return np.stack([array[top:top + size, left:left + size]
                     for top in range(0, h - size + 1, stride)
                     for left in range(0, w - size + 1, stride)])


@lru_cache(maxsize=2)
def _split(split: str) -> np.ndarray:
    cut = [patches(_photo(name), PATCH, STRIDES[split]) for name in PHOTOS[split]]
    return np.concatenate(cut)[:, None]


def load_natural_patches(split: str) -> ArrayDataset:
    x = _split(split)
    return ArrayDataset(x, np.zeros(len(x), dtype=np.int64),
                        NATURAL_PATCHES.classes, NATURAL_PATCHES)
