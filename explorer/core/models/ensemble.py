"""Ensembles of one registered architecture, saved and loaded like any model.

An ensemble's ``meta`` has ``arch="ensemble"`` and ``arch_params``
``{"members": K, "member_arch": A, "member_params": {...}}``; input shape,
classes and normalisation are the members' own. The registry rebuilds it from
that description (``models.create("ensemble", ...)``), so a saved ensemble is
plain safetensors + metadata like every other model.

How the members' outputs combine is the ``rule`` (:data:`RULES`), recorded in
``arch_params`` only when it is not the default:

* ``"mean"`` (no ``rule`` key, so files written before rules existed read
  this way): log of the members' mean probability, how ADP predicts;
* ``"representative"`` (with ``"feature_dim": D``): Synergy-of-Experts (Cui
  et al. 2022). Member k also has a head g_k (``heads.k``, a linear map of its
  D penultimate features to one logit) and estimates the posterior
  probability that its own prediction is right as
  p̂_k(x) = max_c softmax(f_k(x))_c · σ(g_k(x)); each input is answered by the
  member with the highest estimate (ties: the first), its log-softmax the
  ensemble's output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.models.meta import ModelError, ModelMeta

ENSEMBLE_ARCH = "ensemble"
MAX_MEMBERS = 10
MEAN, REPRESENTATIVE = "mean", "representative"
RULES = (MEAN, REPRESENTATIVE)


class Ensemble(nn.Module):
    """Members combined by ``rule`` (see the module doc); by default averaged
    in probability: logits = log(mean softmax).

    The mean is how ADP (Pang et al. 2019) predicts; ``features`` concatenates
    the members' penultimate features. With ``rule="representative"`` each
    member gets a head on its ``feature_dim`` penultimate features that
    estimates whether it is right, and the member estimating highest answers.
    """

    def __init__(self, members: list[nn.Module], rule: str = MEAN,
                 feature_dim: int = 0) -> None:
        super().__init__()
        if rule not in RULES:
            raise ModelError(f"ensemble rule must be one of {', '.join(RULES)}, "
                             f"got {rule!r}")
        self.members = nn.ModuleList(members)
        self.rule = rule
        if rule == REPRESENTATIVE:
            self.heads = nn.ModuleList(nn.Linear(feature_dim, 1) for _ in members)

    def member_outputs(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """(logits, head logits g_k of shape (N,)) of every member; a
        representative ensemble's members classify their ``features``."""
        if self.rule != REPRESENTATIVE:
            raise ModelError("only a representative ensemble has heads estimating "
                             f"whether each member is right (this one's rule is "
                             f"{self.rule!r})")
        logits, heads = [], []
        for member, head in zip(self.members, self.heads, strict=True):
            z = member.features(x)
            logits.append(member.head(z))
            heads.append(head(z).squeeze(1))
        return logits, heads

    def member_logits(self, x: Tensor) -> list[Tensor]:
        if self.rule == REPRESENTATIVE:
            return self.member_outputs(x)[0]
        return [m(x) for m in self.members]

    @staticmethod
    def estimates(logits: list[Tensor], heads: list[Tensor]) -> Tensor:
        """p̂ (K, N): each member's estimate that its prediction is right."""
        return torch.stack([F.softmax(v, dim=1).amax(1) * torch.sigmoid(g)
                            for v, g in zip(logits, heads, strict=True)])

    @staticmethod
    def pick(logits: list[Tensor], chosen: Tensor) -> Tensor:
        """Row i of member ``chosen[i]``'s log-softmax (the rule's output)."""
        stacked = torch.stack([F.log_softmax(v, dim=1) for v in logits], dim=1)
        index = chosen.view(-1, 1, 1).expand(-1, 1, stacked.shape[2])
        return stacked.gather(1, index).squeeze(1)

    def representative(self, x: Tensor) -> Tensor:
        """The index of the member answering each input (N,)."""
        return self.estimates(*self.member_outputs(x)).argmax(0)

    @staticmethod
    def combine(logits: list[Tensor]) -> Tensor:
        """log of the mean softmax of the members' logits."""
        stacked = torch.stack([F.log_softmax(v, dim=1) for v in logits])
        return torch.logsumexp(stacked, dim=0) - math.log(len(logits))

    def features(self, x: Tensor) -> Tensor:
        return torch.cat([m.features(x) for m in self.members], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        if self.rule == REPRESENTATIVE:
            logits, heads = self.member_outputs(x)
            return self.pick(logits, self.estimates(logits, heads).argmax(0))
        return self.combine(self.member_logits(x))


def ensemble_meta(member: ModelMeta, members: int, rule: str = MEAN,
                  feature_dim: int = 0) -> ModelMeta:
    """The description of ``members`` copies of the model ``member`` describes,
    combined by ``rule`` (the mean adds no key: ADP's files stay as they were)."""
    if member.arch == ENSEMBLE_ARCH:
        raise ModelError("an ensemble's members cannot be ensembles themselves")
    arch_params: dict[str, Any] = {
        "members": int(members), "member_arch": member.arch,
        "member_params": dict(member.arch_params)}
    if rule != MEAN:
        arch_params.update(rule=rule, feature_dim=int(feature_dim))
    return dataclasses.replace(
        member, arch=ENSEMBLE_ARCH, arch_params=arch_params,
        training={}, format="safetensors", source="",
    )


def ensemble_of(members: list[nn.Module], rule: str = MEAN,
                feature_dim: int = 0) -> Ensemble:
    """An Ensemble of ``members``, described by ``meta`` when the first has one."""
    ensemble = Ensemble(members, rule, feature_dim)
    first = getattr(members[0], "meta", None) if members else None
    if first is not None and first.format != "torchscript":
        ensemble.meta = ensemble_meta(first, len(members), rule, feature_dim)
    return ensemble


def ensemble_rule(values: dict[str, Any]) -> tuple[str, int]:
    """(rule, feature_dim) of checked ``arch_params``: no rule reads as the mean."""
    rule = values.get("rule", MEAN)
    return rule, int(values.get("feature_dim", 0)) if rule == REPRESENTATIVE else 0


def check_ensemble_params(values: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """(members, member_arch, member_params) from ``arch_params``, or ModelError
    (the rule is checked too; :func:`ensemble_rule` reads it)."""
    allowed = {"members", "member_arch", "member_params", "rule", "feature_dim"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ModelError(f"unknown ensemble parameter {unknown[0]!r} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    members = values.get("members")
    if not isinstance(members, int) or isinstance(members, bool) or not (
            1 <= members <= MAX_MEMBERS):
        raise ModelError(f"ensemble members must be an integer in [1, {MAX_MEMBERS}],"
                         f" got {members!r}")
    arch = values.get("member_arch")
    if not isinstance(arch, str):
        raise ModelError("an ensemble needs its members' architecture "
                         f"('member_arch'), got {arch!r}")
    params = values.get("member_params", {})
    if not isinstance(params, dict):
        raise ModelError(f"ensemble member_params must be an object, got {params!r}")
    rule = values.get("rule", MEAN)
    if rule not in RULES:
        raise ModelError(f"ensemble rule must be one of {', '.join(RULES)}, "
                         f"got {rule!r}")
    dim = values.get("feature_dim")
    if rule == REPRESENTATIVE and (not isinstance(dim, int) or isinstance(dim, bool)
                                   or dim < 1):
        raise ModelError("a representative ensemble needs its members' feature "
                         f"size ('feature_dim', a positive integer), got {dim!r}")
    if rule == MEAN and dim is not None:
        raise ModelError("'feature_dim' belongs to a representative ensemble, "
                         "not one of rule 'mean'")
    return members, arch, params
