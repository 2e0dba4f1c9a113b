"""The small seeded networks and generators the defense tests train."""

from __future__ import annotations

import torch

from explorer.core import models


def mlp(seed: int = 0, in_shape: tuple[int, ...] = (1, 28, 28), hidden: int = 32):
    """A one-hidden-layer MLP whose weights are drawn from ``seed``."""
    torch.manual_seed(seed)
    return models.create("mlp", in_shape=in_shape, hidden=hidden, depth=1)


def gen(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (a method's random draws)."""
    return torch.Generator().manual_seed(seed)
