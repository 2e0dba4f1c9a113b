"""The shape every built-in architecture shares: normalise, extract, classify."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from explorer.core.models.normalize import Normalize


class ImageClassifier(nn.Module):
    """``normalize`` -> ``body`` (penultimate features) -> ``head`` (logits).

    Subclasses build ``body`` and ``head``; ``normalize`` is registered first so
    it is the model's first child, and inputs are always [0, 1] pixels.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, shape (N, D), for pixels ``x`` in [0, 1]."""
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
