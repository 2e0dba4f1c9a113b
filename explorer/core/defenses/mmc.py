"""Max-Mahalanobis centre (MMC) training, Pang et al. (ICLR 2020).

The classifier head becomes L fixed centres μ*_1..μ*_L in the penultimate
feature space: the Max-Mahalanobis centres of Pang et al. (ICML 2018), unit
vectors with pairwise inner products -1/(L-1), scaled by C_MM. The loss is
L_MMC(z, y) = ½‖z - μ*_y‖² (no softmax) and a prediction is the nearest centre.

The head's logits are -½‖z - μ*_k‖². They equal z·μ*_k - ½‖μ*_k‖² up to the
per-sample constant -½‖z‖², so the head stores its centres as a linear layer's
``weight`` and ``bias``: a saved model loads as the plain architecture with the
same predictions and softmax (logits shifted by ½‖z‖² per sample).

Penultimate features after a ReLU are nonnegative and cannot reach centres
with negative coordinates (they collapse towards z = 0, where all classes tie),
so by default every centre is translated by the same vector into the
nonnegative orthant: a common translation keeps all pairwise distances, hence
the Max-Mahalanobis geometry, the loss landscape and the nearest-centre rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import ALPHA, EPS, _pgd_linf
from explorer.core.params import Param, ParamError


def mm_centres(num_classes: int, dim: int, scale: float = 10.0) -> Tensor:
    """(L, d) Max-Mahalanobis centres: ‖μ_i‖ = scale, μ_i·μ_j = -scale²/(L-1).

    The recursive construction (Pang et al. 2018, Algorithm 1): μ_1 = e_1 and
    μ_i(j) = -(1/(L-1) + μ_i·μ_j) / μ_j(j) for j < i, μ_i(i) = √(1 - ‖μ_i‖²).
    """
    k = num_classes
    if k < 2:
        raise ParamError("Max-Mahalanobis centres need at least 2 classes")
    if dim < k - 1:
        raise ParamError(f"Max-Mahalanobis centres for {k} classes need features of "
                         f"at least {k - 1} dimensions, got {dim}")
    mu = torch.zeros(k, max(dim, k), dtype=torch.float64)
    mu[0, 0] = 1.0
    for i in range(1, k):
        for j in range(i):
            mu[i, j] = -(1.0 / (k - 1) + mu[i, :j] @ mu[j, :j]) / mu[j, j]
        mu[i, i] = math.sqrt(max(0.0, 1.0 - float(mu[i, :i] @ mu[i, :i])))
    # Only the last centre can reach index k-1, and it has 0 there: d >= k-1 suffices.
    return (scale * mu[:, :dim]).float()


class MMCHead(nn.Module):
    """Fixed centres as a head: logits -½‖z - μ_k‖², nothing to train.

    ``weight`` (the centres) and ``bias`` (-½‖μ_k‖²) are buffers named like a
    linear layer's parameters, so ``state_dict`` fits the original head.
    """

    def __init__(self, centres: Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", centres.clone())
        self.register_buffer("bias", -0.5 * (centres * centres).sum(1))

    def forward(self, z: Tensor) -> Tensor:
        return -0.5 * torch.cdist(z, self.weight).square()

    def distances(self, z: Tensor, y: Tensor) -> Tensor:
        """½‖z - μ_y‖² per sample: the MMC loss."""
        return 0.5 * (z - self.weight[y]).square().sum(1)


class MaxMahalanobisCenter(Defense):
    name = "mmc"
    sync = "average"  # the loss calls model.features and model.head
    title = "Max-Mahalanobis centre loss (MMC)"
    params = (
        Param("scale", float, 10.0, "C_MM, the norm of every centre",
              minimum=0.01, maximum=1000.0),
        Param("nonnegative", bool, True, "translate the centres into the "
              "nonnegative orthant (for ReLU features; distances unchanged)"),
        Param("adversarial", bool, False, "train on PGD examples (MMC + AT)"),
        EPS, ALPHA,
        Param("steps", int, 7, "PGD steps per batch (when adversarial)",
              minimum=1, maximum=1000),
    )
    description = ("Pang et al. 2020: replace the classifier head by fixed "
                   "Max-Mahalanobis centres and minimise ½‖z - μ*_y‖² on the "
                   "penultimate features; predict the nearest centre. Optionally "
                   "on PGD examples. The loss is larger than cross-entropy: use "
                   "a ~10x smaller learning rate (e.g. SGD 0.002-0.01).")

    @classmethod
    def training_attack_steps(cls, params: Mapping[str, Any]) -> int | None:
        """PGD's steps when adversarial (MMC + AT); else clean images."""
        if not cls.param_value(params, "adversarial"):
            return None
        return int(cls.param_value(params, "steps"))

    def prepare(self, model: nn.Module) -> nn.Module:
        head = getattr(model, "head", None)
        if isinstance(head, MMCHead):
            return model
        if not isinstance(head, nn.Linear) or not hasattr(model, "features"):
            raise ParamError("mmc needs a model with features() and a linear head")
        centres = mm_centres(head.out_features, head.in_features, self.cfg["scale"])
        if self.cfg["nonnegative"]:
            centres = centres - centres.min(0).values.clamp_max(0)
        model.head = MMCHead(centres.to(head.weight.device))
        return model

    def loss(self, model, x, y, generator):
        c = self.cfg
        if c["adversarial"]:
            x = _pgd_linf(model, x, y, generator, eps=c["eps"], alpha=c["alpha"],
                          steps=c["steps"])
        z = model.features(x)
        head: MMCHead = model.head
        return head.distances(z, y).mean(), head(z)
