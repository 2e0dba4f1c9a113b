"""Smooth adversarial training (Xie et al. 2020): ReLU swapped for a smooth
activation, whose gradient is continuous, so the inner attack gets better
gradients and the outer update better-behaved ones.

The swap is a model transform applied once before training: every
``nn.ReLU`` module becomes the chosen activation in place. ReLUs applied
functionally inside ``forward`` cannot be swapped; the residual networks'
blocks do that, so they are refused rather than half converted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import nn

from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import ALPHA, EPS, _pgd_linf
from explorer.core.models.resnets import PreActBlock
from explorer.core.params import Param, ParamError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "softplus": nn.Softplus, "gelu": nn.GELU, "silu": nn.SiLU,
}
# Modules whose forward() applies ReLU as a function (not swappable).
FUNCTIONAL_RELU: tuple[type[nn.Module], ...] = (PreActBlock,)


def swap_relu(model: nn.Module, activation: str) -> int:
    """Replace every ``nn.ReLU`` in ``model`` by ``activation``; the count."""
    for module in model.modules():
        if isinstance(module, FUNCTIONAL_RELU):
            raise ParamError(
                f"activation: {type(module).__name__} applies ReLU inside "
                "forward(), which cannot be swapped; use mlp, small-cnn or lenet")
    count = 0
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.ReLU):
                setattr(parent, child_name, ACTIVATIONS[activation]())
                count += 1
    return count


class SmoothActivations(Defense):
    name = "smooth"
    title = "Smooth activations"
    params = (
        Param("activation", str, "softplus", "activation replacing ReLU",
              choices=tuple(ACTIVATIONS)),
        Param("base", str, "pgd-at", "training objective",
              choices=("standard", "pgd-at")),
        EPS, ALPHA,
        Param("steps", int, 7, "PGD steps per batch (pgd-at)", minimum=1,
              maximum=1000),
    )  # fmt: skip
    description = ("Xie et al. 2020: every ReLU module becomes softplus, GELU "
                   "or SiLU before training, then PGD-AT (or standard "
                   "training) as usual.")

    @classmethod
    def training_attack_steps(cls, params: Mapping[str, Any]) -> int | None:
        """PGD's steps with base pgd-at; standard training crafts nothing."""
        if cls.param_value(params, "base") != "pgd-at":
            return None
        return int(cls.param_value(params, "steps"))

    def prepare(self, model: nn.Module) -> None:
        swap_relu(model, self.cfg["activation"])
        meta = getattr(model, "meta", None)
        if meta is not None and "activation" in meta.arch_params:
            # Saved checkpoints then rebuild the smooth architecture on load.
            meta.arch_params["activation"] = self.cfg["activation"]

    def loss(self, model, x, y, generator):
        c = self.cfg
        if c["base"] == "pgd-at":
            x = _pgd_linf(model, x, y, generator, eps=c["eps"], alpha=c["alpha"],
                          steps=c["steps"])
        logits = model(x)
        return F.cross_entropy(logits, y), logits
