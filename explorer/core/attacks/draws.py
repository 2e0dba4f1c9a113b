"""An attack's random draws: one generator for the batch, or per image.

Called without ids (the Attack Lab, library users), an attack draws from one
``torch.Generator`` seeded per call, as it always did: an image's random
start then depends on the other images of its batch. Called with the
images' global indices (``ids``), every draw of image ``i`` comes from its
own stream, a function of (seed, i, how many draws image ``i`` made
before): any split of the images into batches or processes gives each image
the same draws, so a sharded evaluation equals one process's.

The per-image streams are counter-based (splitmix64 on int64 tensors, the
same on every device): one vectorised hash per call, however many images,
so Square's thousands of per-iteration draws stay cheap. Attacks call the
module's :func:`rand`, :func:`randn`, :func:`randint` with either kind, and
:func:`rows` for the draws of a subset of the batch (restarts, Square's
working set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

_MOD = 1 << 64


def _signed(c: int) -> int:
    return c - _MOD if c >= 1 << 63 else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_C1 = _signed(0xBF58476D1CE4E5B9)
_C2 = _signed(0x94D049BB133111EB)
_CALL = _signed(0xD1B54A32D192ED03)


def _srl(z: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 (``>>`` is arithmetic on signed ints)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix(z: Tensor) -> Tensor:
    """splitmix64's finaliser; int64 multiplication wraps around."""
    z = (z ^ _srl(z, 30)) * _C1
    z = (z ^ _srl(z, 27)) * _C2
    return z ^ _srl(z, 31)


class ImageDraws:
    """Per-image random streams of one attack call (see the module doc).

    ``rows(idx)`` is the same streams for a subset of the images, in that
    order; drawing through it advances only those images' streams.
    """

    def __init__(self, seed: int | None, ids: Tensor, device: torch.device | str):
        ids = torch.as_tensor(ids).to(device=device, dtype=torch.int64).flatten()
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)))
        seed_key = _mix(torch.tensor(_signed(int(seed) % _MOD), dtype=torch.int64))
        self.key = _mix(ids * _GOLDEN + seed_key.to(ids.device))
        self.counts = torch.zeros_like(ids)
        self.pos = torch.arange(len(ids), device=ids.device)
        self.device = ids.device

    def rows(self, idx: Tensor | slice) -> ImageDraws:
        view = object.__new__(ImageDraws)
        view.key, view.counts, view.device = self.key, self.counts, self.device
        view.pos = self.pos[idx.to(self.device) if isinstance(idx, Tensor) else idx]
        return view

    def __len__(self) -> int:
        return len(self.pos)

    def bits(self, shape: Sequence[int]) -> Tensor:
        """Random int64 bits of ``shape``, row ``r`` from image ``r``'s stream."""
        shape = tuple(shape)
        if not shape or shape[0] != len(self.pos):
            raise ValueError(f"per-image draws of shape {shape} for "
                             f"{len(self.pos)} images")
        per_row = math.prod(shape[1:])
        count = self.counts[self.pos]
        self.counts[self.pos] = count + 1
        stream = _mix(self.key[self.pos] + count * _CALL)
        j = torch.arange(1, per_row + 1, device=self.device, dtype=torch.int64)
        return _mix(stream[:, None] + j * _GOLDEN).view(shape)

    def uniform(self, shape: Sequence[int], dtype: torch.dtype | None) -> Tensor:
        """In [0, 1): 53 random bits for float64, 24 otherwise (exact floats)."""
        if dtype == torch.float64:
            return _srl(self.bits(shape), 11).to(torch.float64) * 2.0**-53
        return (_srl(self.bits(shape), 40).to(torch.float32) * 2.0**-24).to(
            dtype or torch.float32)


Draws = torch.Generator | ImageDraws


def rows(rng: Draws | None, idx: Tensor | slice) -> Draws | None:
    """The draws of the images ``idx`` of the batch (a batch generator is
    shared by all its images: itself)."""
    return rng.rows(idx) if isinstance(rng, ImageDraws) else rng


def per_image(rng: Draws | None) -> bool:
    return isinstance(rng, ImageDraws)


def rand(shape: Sequence[int], rng: Draws | None, *, device: torch.device | str,
         dtype: torch.dtype | None = None) -> Tensor:
    """``torch.rand``; per image, ``shape[0]`` is the number of images."""
    if isinstance(rng, ImageDraws):
        return rng.uniform(shape, dtype).to(device)
    return torch.rand(tuple(shape), generator=rng, device=device, dtype=dtype)


def randn(shape: Sequence[int], rng: Draws | None, *, device: torch.device | str,
          dtype: torch.dtype | None = None) -> Tensor:
    """``torch.randn``; per image by Box-Muller on two uniform draws."""
    if not isinstance(rng, ImageDraws):
        return torch.randn(tuple(shape), generator=rng, device=device, dtype=dtype)
    shape = tuple(shape)
    u = rng.uniform((shape[0], 2, *shape[1:]), torch.float64)
    z = (-2 * torch.log1p(-u[:, 0])).sqrt() * torch.cos(2 * math.pi * u[:, 1])
    return z.to(device=device, dtype=dtype or torch.float32)


def randint(low: int, high: int, shape: Sequence[int], rng: Draws | None, *,
            device: torch.device | str) -> Tensor:
    """``torch.randint`` (int64 in [low, high)); per image from 53-bit uniforms."""
    if not isinstance(rng, ImageDraws):
        return torch.randint(low, high, tuple(shape), generator=rng, device=device)
    u = rng.uniform(shape, torch.float64)
    return (low + (u * (high - low)).floor().to(torch.int64)).clamp_(
        max=high - 1).to(device)
