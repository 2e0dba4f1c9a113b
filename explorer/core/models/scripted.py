"""A TorchScript model wrapped so it carries ``meta`` like every other model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from explorer.core.models.normalize import Normalize


class ScriptedModel(nn.Module):
    """``normalize`` then the scripted module.

    TorchScript files usually normalise inside; the default ``Normalize`` is
    then the identity (mean 0, std 1). ``features`` uses the scripted module's
    own ``features`` method when it exports one, and falls back to the logits.
    """

    def __init__(
        self,
        scripted: torch.jit.ScriptModule,
        mean: Sequence[float] = (0.0,),
        std: Sequence[float] = (1.0,),
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.scripted = scripted

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        if hasattr(self.scripted, "features"):
            return self.scripted.features(x)
        return self.scripted(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scripted(self.normalize(x))
