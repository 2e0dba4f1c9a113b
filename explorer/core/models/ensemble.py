"""Ensembles of one registered architecture, saved and loaded like any model.

An ensemble's ``meta`` has ``arch="ensemble"`` and ``arch_params``
``{"members": K, "member_arch": A, "member_params": {...}}``; input shape,
classes and normalisation are the members' own. The registry rebuilds it from
that description (``models.create("ensemble", ...)``), so a saved ensemble is
plain safetensors + metadata like every other model.
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


class Ensemble(nn.Module):
    """Members averaged in probability: logits = log(mean softmax).

    This is how ADP (Pang et al. 2019) predicts; ``features`` concatenates
    the members' penultimate features.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def member_logits(self, x: Tensor) -> list[Tensor]:
        return [m(x) for m in self.members]

    @staticmethod
    def combine(logits: list[Tensor]) -> Tensor:
        """log of the mean softmax of the members' logits."""
        stacked = torch.stack([F.log_softmax(v, dim=1) for v in logits])
        return torch.logsumexp(stacked, dim=0) - math.log(len(logits))

    def features(self, x: Tensor) -> Tensor:
        return torch.cat([m.features(x) for m in self.members], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.combine(self.member_logits(x))


def ensemble_meta(member: ModelMeta, members: int) -> ModelMeta:
    """The description of ``members`` copies of the model ``member`` describes."""
    if member.arch == ENSEMBLE_ARCH:
        raise ModelError("an ensemble's members cannot be ensembles themselves")
    return dataclasses.replace(
        member,
        arch=ENSEMBLE_ARCH,
        arch_params={"members": int(members), "member_arch": member.arch,
                     "member_params": dict(member.arch_params)},
        training={}, format="safetensors", source="",
    )


def ensemble_of(members: list[nn.Module]) -> Ensemble:
    """An Ensemble of ``members``, described by ``meta`` when the first has one."""
    ensemble = Ensemble(members)
    first = getattr(members[0], "meta", None) if members else None
    if first is not None and first.format != "torchscript":
        ensemble.meta = ensemble_meta(first, len(members))
    return ensemble


def check_ensemble_params(values: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """(members, member_arch, member_params) from ``arch_params``, or ModelError."""
    allowed = {"members", "member_arch", "member_params"}
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
    return members, arch, params
