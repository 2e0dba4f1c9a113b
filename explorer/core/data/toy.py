"""Two-dimensional toy sets for decision-boundary views, drawn with NumPy only.

Every generator returns class-balanced points with features roughly in
[-2, 2]. ``noise`` is the standard deviation of Gaussian noise added to each
coordinate (for ``blobs``: the spread of each blob). Train and test draw from
different seeds derived from ``seed``, the set's name and the split.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from explorer.core.data.base import ArrayDataset, DataError, DataInfo
from explorer.core.params import Param, ParamError, validate

DEFAULT_N = {"train": 1000, "test": 500}
_SPLIT_IDS = {"train": 1, "test": 2}


def _params(noise: float) -> tuple[Param, ...]:
    return (
        Param(
            "n",
            int,
            0,
            "number of points (0 = 1000 for train, 500 for test)",
            minimum=0,
            maximum=1_000_000,
        ),
        Param(
            "noise",
            float,
            noise,
            "std of the Gaussian noise on each coordinate",
            minimum=0.0,
            maximum=5.0,
        ),
        Param(
            "seed",
            int,
            0,
            "random seed (train and test derive their own)",
            minimum=0,
            maximum=2**31 - 1,
        ),
    )


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)


def _moons(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, np.pi, len(y))
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    pts = np.where(y[:, None] == 0, upper, lower)
    return (pts - [0.5, 0.25]) * 1.2


def _circles(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, 2 * np.pi, len(y))
    radius = np.where(y == 0, 1.2, 0.6)
    return np.stack([np.cos(t), np.sin(t)], axis=1) * radius[:, None]


def _spirals(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = np.sqrt(rng.uniform(0.02, 1.0, len(y)))  # sqrt: even density along each arm
    angle = y * (2 * np.pi / 3) + r * 3.0 * np.pi
    return np.stack([np.cos(angle), np.sin(angle)], axis=1) * (1.5 * r)[:, None]


def _blobs(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angles = np.pi / 2 + np.arange(3) * (2 * np.pi / 3)
    centers = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 1.1
    return centers[y]


# name -> (generator, classes, default noise, title, description)
_TOYS: dict[str, tuple[Callable[..., np.ndarray], int, float, str, str]] = {
    "moons": (_moons, 2, 0.1, "Two moons", "Two interleaving half circles."),
    "circles": (
        _circles,
        2,
        0.08,
        "Concentric circles",
        "A small circle inside a larger one.",
    ),
    "spirals": (_spirals, 3, 0.05, "Three spirals", "Three interleaved spiral arms."),
    "blobs": (_blobs, 3, 0.35, "Three blobs", "Three Gaussian blobs on a triangle."),
}


def _info(name: str) -> DataInfo:
    _, k, noise, title, text = _TOYS[name]
    return DataInfo(
        name=name,
        title=f"{title} (2-D toy)",
        kind="toy",
        classes=tuple(f"class {i}" for i in range(k)),
        shape=(2,),
        splits=("test", "train"),
        mean=(0.0, 0.0),
        std=(1.0, 1.0),
        description=f"{text} Two features, {k} balanced classes; for decision-"
        "boundary views.",
        params=_params(noise),
    )


TOY_INFOS = {name: _info(name) for name in _TOYS}


def make_toy(name: str, split: str, **params: object) -> ArrayDataset:
    info = TOY_INFOS[name]
    try:
        values = validate(info.params, params)
    except ParamError as exc:
        raise DataError(f"{name}: {exc}") from None
    n = values["n"] or DEFAULT_N[split]
    generate, k, _, _, _ = _TOYS[name]
    seed = [values["seed"], zlib.crc32(name.encode()), _SPLIT_IDS[split]]
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, k, rng)
    x = generate(y, rng) + rng.normal(0.0, values["noise"], (n, 2))
    return ArrayDataset(x.astype(np.float32), y, info.classes, info)
