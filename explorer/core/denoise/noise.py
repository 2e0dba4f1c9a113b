"""Noise models: what turns a clean image x into a noisy observation v.

``apply(x, kind, level, generator)`` draws from a seeded ``torch.Generator``
so the same seed gives the same observation. Gaussian observations are not
clipped to [0, 1] (the usual denoising setting, and ObsAtk's zero-mean
perturbation lives in the same unclipped space); Poisson and salt-and-pepper
observations are valid pixels by construction. A user's real noisy image is
read by :func:`load_real`: there is no clean image to compare it with.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from explorer.core.data import images
from explorer.core.denoise.registry import DenoiserError
from explorer.core.params import ParamError

# kind -> (name of its level, range, what the level means)
KINDS: dict[str, tuple[str, float, float, str]] = {
    "gaussian": ("sigma", 0.0, 1.0, "standard deviation of additive Gaussian noise"),
    "poisson": ("peak", 1.0, 1e4, "photon count of a white pixel (lower is noisier)"),
    "salt-pepper": ("amount", 0.0, 1.0, "fraction of pixels set to 0 or 1"),
}


def names() -> list[str]:
    return list(KINDS)


def check(kind: str, level: float) -> float:
    """The level as a float, or a ParamError naming the level and its range."""
    if kind not in KINDS:
        raise ParamError(f"noise must be one of {', '.join(KINDS)}, got {kind!r}")
    name, lo, hi, _ = KINDS[kind]
    level = float(level)
    if not lo <= level <= hi or not np.isfinite(level):
        raise ParamError(f"{name} must be in [{lo:g}, {hi:g}] for {kind} noise, "
                         f"got {level:g}")
    return level


def apply(x: Tensor, kind: str, level: float,
          generator: torch.Generator | None = None) -> Tensor:
    """A noisy observation of ``x`` (pixels in [0, 1], any shape)."""
    level = check(kind, level)
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device,
                            dtype=x.dtype)
        return x + level * noise
    if kind == "poisson":
        counts = torch.poisson(x.clamp(0, 1) * level, generator=generator)
        return counts / level
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    salt = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    hit = u < level
    return torch.where(hit, (salt < 0.5).to(x.dtype), x)


def load_real(path: str | os.PathLike[str], channels: int = 1) -> Tensor:
    """A user's real noisy photo as a C×H×W tensor in [0, 1] (no resizing)."""
    try:
        array = images.read_image(path, channels).astype(np.float32) / 255.0
    except images.ImageFileError as exc:
        raise DenoiserError(str(exc)) from None
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))
