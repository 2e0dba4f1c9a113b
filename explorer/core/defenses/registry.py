"""The defense registry: one line per method."""

from __future__ import annotations

from typing import Any

from explorer.core.defenses.adp import AdaptiveDiversityPromoting
from explorer.core.defenses.base import Defense
from explorer.core.defenses.cifs import CIFSTraining
from explorer.core.defenses.classic import (
    DefensiveDistillation,
    EnsembleAdversarialTraining,
)
from explorer.core.defenses.gat import GuidedAdversarialTraining
from explorer.core.defenses.gaussian import GaussianAugmentation, SmoothAdv
from explorer.core.defenses.methods import (
    FastAdversarialTraining,
    FreeAdversarialTraining,
    PGDAdversarialTraining,
    Standard,
    Trades,
)
from explorer.core.defenses.mmc import MaxMahalanobisCenter
from explorer.core.defenses.mng_ac import MetaNoiseConsistency
from explorer.core.defenses.multi import (
    AdvAvg,
    AdvMax,
    MultiSteepestDescent,
    PGDAdversarialTrainingL1,
    PGDAdversarialTrainingL2,
    StochasticAdversarial,
)
from explorer.core.defenses.noilin import NoiLIn, adversarial, wrap
from explorer.core.defenses.rce import ReverseCrossEntropy
from explorer.core.defenses.smooth import SmoothActivations
from explorer.core.defenses.soe import SynergyOfExperts
from explorer.core.params import Param, ParamError

REGISTRY: dict[str, type[Defense]] = {
    cls.name: cls
    for cls in (Standard, PGDAdversarialTraining, FastAdversarialTraining, Trades,
                FreeAdversarialTraining)
}
REGISTRY.update((cls.name, cls) for cls in (
    AdvAvg, AdvMax, MultiSteepestDescent, StochasticAdversarial,
    MetaNoiseConsistency, NoiLIn, SmoothActivations))

REGISTRY.update((cls.name, cls) for cls in (
    MaxMahalanobisCenter, AdaptiveDiversityPromoting, ReverseCrossEntropy))
REGISTRY.update((cls.name, cls) for cls in (GaussianAugmentation, SmoothAdv))
REGISTRY.update((cls.name, cls) for cls in (PGDAdversarialTrainingL2,
                                            PGDAdversarialTrainingL1))
REGISTRY.update((cls.name, cls) for cls in (
    DefensiveDistillation, EnsembleAdversarialTraining))
REGISTRY[SynergyOfExperts.name] = SynergyOfExperts
REGISTRY[CIFSTraining.name] = CIFSTraining
REGISTRY[GuidedAdversarialTraining.name] = GuidedAdversarialTraining


def names() -> list[str]:
    return list(REGISTRY)


def defense_class(name: str) -> type[Defense]:
    if name not in REGISTRY:
        raise ParamError(
            f"unknown defense {name!r} (choose from {', '.join(REGISTRY)})"
        )
    return REGISTRY[name]


def spec(name: str) -> tuple[Param, ...]:
    return defense_class(name).params


def selection_key(name: str) -> str:
    """The figure (``val_`` + it) on which method ``name`` chooses its best
    epoch; an unknown name (a run stored by a newer version) reads as the
    default, validation robust accuracy."""
    cls = REGISTRY.get(name)
    return cls.selection_key if cls is not None else Defense.selection_key


def figure_name(metric: str) -> str:
    """A per-epoch figure in words: ``val_union_acc`` → ``union``,
    ``test_robust_acc`` → ``robust``, ``val_linf_acc`` → ``l-inf``."""
    stem = metric.removeprefix("val_").removeprefix("test_").removesuffix("_acc")
    return {"linf": "l-inf"}.get(stem, stem.replace("_", " "))


def create(name: str, **params: Any) -> Defense:
    return defense_class(name)(**params)



def adversarial_names() -> list[str]:
    """The methods ``--noilin`` (the Training page's NoiLIn box) can wrap."""
    return [n for n, cls in REGISTRY.items() if adversarial(n, cls.params)]


def create_wrapped(name: str, params: Any, noilin: Any = None) -> Defense:
    """Method ``name`` with ``params``, wrapped by NoiLIn when ``noilin`` (the
    wrapper's values, a mapping) is not None: what a TrainingConfig trains."""
    inner = create(name, **params)
    return inner if noilin is None else wrap(name, inner, **noilin)
