"""Adaptive Diversity Promoting (ADP) ensembles, Pang et al. (ICML 2019).

K members F^1..F^K are trained jointly with

    L_ADP = Σ_k CE(F^k(x), y) - α·H(𝓕) - β·log(ED + δ),

𝓕 the mean prediction, H its Shannon entropy, and the ensemble diversity
ED = det(M̃ᵀM̃), M̃ = (F̃^1_∖y, ..., F̃^K_∖y) ∈ R^{(L-1)×K} the members'
non-maximal predictions (the true label's entry removed) normalised to unit
l2 norm: the squared volume they span. δ·I is added to M̃ᵀM̃ before the
determinant (the paper's code, det_offset = 1e-6) so log ED stays finite.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.defenses.base import Defense
from explorer.core.models.ensemble import Ensemble, ensemble_of
from explorer.core.params import Param

LOG_EPS = 1e-20
DET_OFFSET = 1e-6


def _reinit(model: nn.Module, seed: int) -> nn.Module:
    """Fresh weights for every layer that can reset itself, from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return model


def make_ensemble(model: nn.Module, members: int, seed: int = 0) -> Ensemble:
    """``members`` deep copies of ``model``, member k re-initialised from seed+k.

    The ensemble carries a ``meta`` (arch "ensemble") when ``model`` has one,
    so the trainer saves it and ``models.load`` rebuilds it.
    """
    return ensemble_of([_reinit(copy.deepcopy(model), seed + k)
                        for k in range(members)])


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy of each row."""
    return -(probs * torch.log(probs + LOG_EPS)).sum(1)


def log_diversity(probs: list[Tensor], y: Tensor) -> Tensor:
    """log det(M̃ᵀM̃ + δI) per sample, M̃ the normalised non-maximal predictions."""
    p = torch.stack(probs, dim=1)  # (N, K, L)
    n, _, classes = p.shape
    keep = torch.ones(n, classes, dtype=torch.bool, device=p.device)
    keep[torch.arange(n, device=p.device), y] = False
    rest = p[keep.unsqueeze(1).expand_as(p)].view(n, p.shape[1], classes - 1)
    rest = F.normalize(rest, dim=2, eps=1e-12)
    gram = rest @ rest.transpose(1, 2)  # (N, K, K) = M̃ᵀM̃
    eye = torch.eye(gram.shape[1], dtype=gram.dtype, device=gram.device)
    return torch.logdet(gram + DET_OFFSET * eye)


class AdaptiveDiversityPromoting(Defense):
    name = "adp"
    sync = "average"  # the loss calls model.member_logits
    title = "ADP ensemble (diversity promoting)"
    params = (
        Param("members", int, 3, "ensemble members trained jointly",
              minimum=2, maximum=10),
        Param("alpha", float, 2.0, "α, weight of the ensemble entropy",
              minimum=0.0, maximum=100.0),
        Param("beta", float, 0.5, "β, weight of the log ensemble diversity",
              minimum=0.0, maximum=100.0),
        Param("seed", int, 0, "seed of member k's initialisation is seed + k",
              minimum=0, maximum=2**31 - 1),
    )
    description = ("Pang et al. 2019: train K members jointly with Σ CE - α·H(mean "
                   "prediction) - β·log det of the Gram matrix of the normalised "
                   "non-maximal predictions; the model becomes the ensemble "
                   "averaging member probabilities.")

    def _check(self) -> None:  # alpha is a weight here, not a pixel step
        pass

    def prepare(self, model: nn.Module) -> nn.Module:
        if isinstance(model, Ensemble):
            return model
        return make_ensemble(model, self.cfg["members"], self.cfg["seed"])

    def loss(self, model, x, y, generator):
        logits = model.member_logits(x)
        ce = sum(F.cross_entropy(v, y) for v in logits)
        combined = Ensemble.combine(logits)
        loss = ce
        if self.cfg["alpha"]:
            loss = loss - self.cfg["alpha"] * entropy(combined.exp()).mean()
        if self.cfg["beta"]:
            probs = [F.softmax(v, dim=1) for v in logits]
            loss = loss - self.cfg["beta"] * log_diversity(probs, y).mean()
        return loss, combined
