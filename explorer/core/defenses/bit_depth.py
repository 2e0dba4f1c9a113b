"""Bit-depth reduction, an inference-time defense with shattered gradients.

Feature squeezing (Xu, Evans and Qi, NDSS 2018) rounds every input pixel to
``bits`` bits per channel before the classifier: with ``L = 2**bits - 1``,
x ↦ round(L·x) / L, so a perturbation smaller than half a level mostly
rounds away. The rounding has no useful gradient (``torch.round``'s is zero
everywhere), so a plain gradient attack sees a flat loss and stalls: the
classic "shattered gradients" of Athalye et al. (ICML 2018), who break it with
BPDA, passing the gradient back through the rounding as if it were the
identity. :class:`Squeeze` is therefore marked ``non_differentiable = True``
(the attacks' ``bpda`` option, :mod:`explorer.core.attacks.eot`).

The input is taken to be in [0, 1], as everywhere in the app; the rounding
keeps its shape, so BPDA can approximate it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from explorer.core.params import Param, ParamError

BITS = Param("bits", int, 3, "bits per channel kept: pixels are rounded to "
             "2^bits levels (8 = the image as stored)", minimum=1, maximum=8)
BIT_DEPTH_PARAMS = (BITS,)


class Squeeze(nn.Module):
    """Rounds its input to ``2**bits`` levels in [0, 1] (zero gradient)."""

    non_differentiable = True  # BPDA approximates it (attacks' ``bpda``)

    def __init__(self, bits: int = 3) -> None:
        super().__init__()
        self.bits = BITS.validate(bits)
        self.levels = 2 ** self.bits - 1

    def forward(self, x: Tensor) -> Tensor:
        return torch.round(x * self.levels) / self.levels

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


class BitDepth(nn.Module):
    """``model`` on the input rounded to ``bits`` bits per channel."""

    def __init__(self, model: nn.Module, bits: int = 3) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ParamError(f"bit-depth wraps a model, got {type(model).__name__}")
        self.squeeze = Squeeze(bits)
        self.model = model

    @property
    def bits(self) -> int:
        return self.squeeze.bits

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.squeeze(x))
