"""Attacks: one module per family, one registry line per attack.

``create(name, model, **params)``, ``names()``, ``spec(name)``; an attack is
callable ``atk(x, y) -> x_adv`` and ``atk.run(x, y)`` yields per-step
:class:`AttackStep` for the live view.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from explorer.core.attacks.apgd import APGDCrossEntropy, APGDDifferenceOfLogitsRatio
from explorer.core.attacks.base import (
    TARGET_MODES,
    Attack,
    AttackStep,
    attack_loss,
    is_success,
)
from explorer.core.attacks.blackbox import SPSA, Square
from explorer.core.attacks.corruptions import (
    GaussianNoise,
    Rotation,
    SaltPepper,
    UniformNoise,
)
from explorer.core.attacks.cw import CarliniWagnerL2
from explorer.core.attacks.deepfool import DeepFool
from explorer.core.attacks.ead import ElasticNet
from explorer.core.attacks.fab import FastAdaptiveBoundary
from explorer.core.attacks.iterative import (
    BasicIterative,
    FastGradientRandomStart,
    FastGradientSign,
    MomentumIterative,
    ProjectedGradientDescent,
)
from explorer.core.attacks.jsma import SaliencyMap
from explorer.core.attacks.threat import L1Ball, L2Ball, LinfBall, make_threat
from explorer.core.attacks.universal import UniversalPerturbation
from explorer.core.inference import model_frozen
from explorer.core.params import Param, ParamError

REGISTRY: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        FastGradientSign,
        FastGradientRandomStart,
        BasicIterative,
        ProjectedGradientDescent,
        MomentumIterative,
        APGDCrossEntropy,
        APGDDifferenceOfLogitsRatio,
        FastAdaptiveBoundary,
        CarliniWagnerL2,
        ElasticNet,
        DeepFool,
        SaliencyMap,
        SPSA,
        Square,
        UniversalPerturbation,
        GaussianNoise,
        UniformNoise,
        SaltPepper,
        Rotation,
    )
}


def names() -> list[str]:
    return list(REGISTRY)


def attack_class(name: str) -> type[Attack]:
    if name not in REGISTRY:
        raise ParamError(
            f"unknown attack {name!r} (choose from {', '.join(REGISTRY)})"
        )
    return REGISTRY[name]


def spec(name: str) -> tuple[Param, ...]:
    return attack_class(name).all_params()


def create(name: str, model: nn.Module, *, seed: int | None = 0, **params: Any):
    return attack_class(name)(model, seed=seed, **params)


__all__ = [
    "REGISTRY", "TARGET_MODES", "Attack", "AttackStep", "L1Ball", "L2Ball",
    "LinfBall", "attack_class", "attack_loss", "create", "is_success",
    "make_threat", "model_frozen", "names", "spec",
]  # fmt: skip
