"""The defense registry: one line per method."""

from __future__ import annotations

from typing import Any

from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import (
    FastAdversarialTraining,
    FreeAdversarialTraining,
    PGDAdversarialTraining,
    Standard,
    Trades,
)
from explorer.core.params import Param, ParamError

REGISTRY: dict[str, type[Defense]] = {
    cls.name: cls
    for cls in (Standard, PGDAdversarialTraining, FastAdversarialTraining, Trades,
                FreeAdversarialTraining)
}


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


def create(name: str, **params: Any) -> Defense:
    return defense_class(name)(**params)

