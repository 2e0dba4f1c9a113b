"""Denoiser architectures by name, their parameter specs and metadata."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from explorer.core import params as P
from explorer.core.denoise.architectures import DnCNN, UNet

KIND = "denoiser"


class DenoiserError(ValueError):
    """A denoiser cannot be created, loaded or used; the message says why."""


@dataclass
class DenoiserMeta:
    """What a denoiser is: architecture, channels, the images it was trained on."""

    arch: str
    arch_params: dict[str, Any] = field(default_factory=dict)
    channels: int = 1
    in_shape: tuple[int, ...] = (1, 28, 28)
    dataset: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    kind: str = KIND
    source: str = ""

    def __post_init__(self) -> None:
        self.channels = int(self.channels)
        self.in_shape = tuple(int(n) for n in self.in_shape)

    def to_json(self) -> str:
        out = asdict(self)
        out["in_shape"] = list(self.in_shape)
        return json.dumps(out, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DenoiserMeta:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DenoiserError(f"denoiser metadata is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("arch"), str):
            raise DenoiserError("denoiser metadata lacks the architecture ('arch')")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise DenoiserError(f"unknown denoiser metadata field {unknown[0]!r}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise DenoiserError(f"invalid denoiser metadata: {exc}") from None


@dataclass(frozen=True)
class DenoiserArch:
    name: str
    build: Callable[..., nn.Module]
    params: tuple[P.Param, ...]
    description: str
    # height and width must be multiples of this (poolings of a U-Net)
    size_multiple: Callable[[dict[str, Any]], int] = lambda values: 1


REGISTRY: dict[str, DenoiserArch] = {
    a.name: a for a in (
        DenoiserArch(
            "dncnn", DnCNN,
            (P.Param("depth", int, 8, "convolution layers", 3, 30),
             P.Param("width", int, 32, "channels of the hidden layers", 4, 256),
             P.Param("batch_norm", bool, True, "batch normalisation after the "
                     "hidden convolutions")),
            "DnCNN-style residual denoiser: predicts the noise (Zhang et al. 2017)"),
        DenoiserArch(
            "unet", UNet,
            (P.Param("width", int, 16, "channels of the first level", 4, 128),
             P.Param("levels", int, 2, "poolings (image sides must be divisible "
                     "by 2**levels)", 1, 4)),
            "small residual U-Net (Ronneberger et al. 2015)",
            lambda values: 2 ** values["levels"]),
    )
}


def names() -> list[str]:
    return list(REGISTRY)


def _arch(name: str) -> DenoiserArch:
    if name not in REGISTRY:
        raise DenoiserError(f"unknown denoiser architecture {name!r} "
                            f"(known: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def spec(name: str) -> tuple[P.Param, ...]:
    return _arch(name).params


def size_multiple(meta: DenoiserMeta) -> int:
    arch = _arch(meta.arch)
    return arch.size_multiple(P.validate(arch.params, meta.arch_params))


def create(name: str, *, in_shape: tuple[int, ...] = (1, 28, 28),
           dataset: str = "", **params: Any) -> nn.Module:
    """A fresh denoiser in eval mode carrying its :class:`DenoiserMeta`."""
    arch = _arch(name)
    values = P.validate(arch.params, params)
    if len(in_shape) != 3:
        raise DenoiserError(f"in_shape must be C×H×W, got {tuple(in_shape)}")
    model = arch.build(channels=in_shape[0], **values)
    model.meta = DenoiserMeta(arch=name, arch_params=values, channels=in_shape[0],
                              in_shape=tuple(in_shape), dataset=dataset)
    return model.eval()
