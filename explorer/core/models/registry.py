"""The architecture registry: one entry per architecture, looked up by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from explorer.core import params as P
from explorer.core.models import zoo
from explorer.core.models.cifs import PARAMS as CIFS_PARAMS
from explorer.core.models.ensemble import (
    ENSEMBLE_ARCH,
    check_ensemble_params,
    ensemble_of,
    ensemble_rule,
)
from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.resnets import PreActResNet18, WideResNet, wrn_depth_problem
from explorer.core.models.simple import ACTIVATIONS, MLP, LeNet5, SmallCNN


@dataclass(frozen=True)
class Architecture:
    """A buildable architecture: constructor, parameter specs and a description.

    ``check`` rejects combinations a single range cannot express by returning
    a message (or ``None`` when the values are fine).
    """

    name: str
    build: Callable[..., nn.Module]
    params: tuple[P.Param, ...]
    description: str
    check: Callable[[dict[str, Any]], str | None] | None = None


def _wrn_check(values: dict[str, Any]) -> str | None:
    return (
        None if (values["depth"] - 4) % 6 == 0 else wrn_depth_problem(values["depth"])
    )


_ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "mlp",
            MLP,
            (
                P.Param("hidden", int, 256, "units per hidden layer", 1, 8192),
                P.Param("depth", int, 2, "number of hidden layers", 1, 16),
                P.Param("activation", str, "relu", "hidden non-linearity",
                        choices=ACTIVATIONS),
            ),
            "multi-layer perceptron",
        ),
        Architecture(
            "small-cnn",
            SmallCNN,
            (
                P.Param("width", int, 16, "channels of the first conv stage", 1, 256),
                P.Param("dense", int, 256, "units of the dense layer", 1, 4096),
                P.Param("activation", str, "relu", "hidden non-linearity",
                        choices=ACTIVATIONS),
                *CIFS_PARAMS,
            ),
            "compact 3-stage CNN, fast on CPU",
        ),
        Architecture(
            "lenet5",
            LeNet5,
            (P.Param("activation", str, "relu", "hidden non-linearity",
                     choices=ACTIVATIONS),),
            "LeNet-5 (LeCun et al. 1998)",
        ),
        Architecture(
            "preact-resnet18",
            PreActResNet18,
            (P.Param("width", int, 64, "channels of the first stage", 1, 512),
             *CIFS_PARAMS),
            "pre-activation ResNet-18 (He et al. 2016)",
        ),
        Architecture(
            "wide-resnet",
            WideResNet,
            (
                P.Param("depth", int, 16, "layers; (depth - 4) % 6 == 0", 10, 100),
                P.Param("widen_factor", int, 4, "channel multiplier k", 1, 20),
                P.Param("dropout", float, 0.0, "dropout inside blocks", 0.0, 0.9),
                *CIFS_PARAMS,
            ),
            "Wide ResNet WRN-depth-k (Zagoruyko & Komodakis 2016)",
            _wrn_check,
        ),
    )
}


def names() -> list[str]:
    """Registered architecture names."""
    return list(_ARCHITECTURES)


def architecture(arch: str) -> Architecture:
    """A registered architecture, or a library one (``torchvision:NAME``)."""
    if zoo.is_zoo(arch):
        zoo.check_name(arch)
        return Architecture(
            arch,
            lambda shape, num_classes, mean, std: zoo.build(arch, shape, num_classes,
                                                            mean, std),
            (), zoo.description(arch))
    try:
        return _ARCHITECTURES[arch]
    except KeyError:
        raise ModelError(
            f"unknown architecture {arch!r} (known: {', '.join(_ARCHITECTURES)}, "
            f"or torchvision:NAME / timm:NAME)"
        ) from None


def spec(arch: str) -> tuple[P.Param, ...]:
    """Parameter specs of an architecture."""
    return architecture(arch).params


def description(arch: str) -> str:
    return architecture(arch).description


def validate_params(arch: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked; raises ParamError naming the value."""
    entry = architecture(arch)
    checked = P.validate(entry.params, values)
    problem = entry.check(checked) if entry.check else None
    if problem:
        raise P.ParamError(problem)
    return checked


def _check_shape(in_shape: Sequence[int], num_classes: int) -> tuple[int, ...]:
    shape = tuple(in_shape)
    if len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise ModelError(
            f"in_shape must be three positive integers (C, H, W), got {shape}"
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes must be a positive integer, got {num_classes!r}")
    return shape


def _check_stats(
    mean: Sequence[float], std: Sequence[float], channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean_t, std_t = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    for label, values in (("mean", mean_t), ("std", std_t)):
        if len(values) not in (1, channels):
            raise ModelError(
                f"{label} must have 1 or {channels} values for {channels}-channel "
                f"inputs, got {len(values)}"
            )
    if any(s <= 0 for s in std_t):
        raise ModelError(f"std must be positive, got {std_t}")
    return mean_t, std_t


def create(
    arch: str,
    *,
    in_shape: Sequence[int] = (1, 28, 28),
    num_classes: int = 10,
    mean: Sequence[float] = (0.5,),
    std: Sequence[float] = (0.5,),
    classes: Sequence[str] = (),
    dataset: str = "",
    **arch_params: Any,
) -> nn.Module:
    """A freshly initialised model; ``model.meta`` describes it.

    ``arch="ensemble"`` takes ``members``, ``member_arch`` and ``member_params``
    (and ``rule``, ``feature_dim``) and builds that many freshly initialised
    members (see ``ensemble.py``).
    """
    if arch == ENSEMBLE_ARCH:
        members, member_arch, member_params = check_ensemble_params(arch_params)
        if member_arch == ENSEMBLE_ARCH:
            raise ModelError("an ensemble's members cannot be ensembles themselves")
        return ensemble_of([
            create(member_arch, in_shape=in_shape, num_classes=num_classes, mean=mean,
                   std=std, classes=classes, dataset=dataset, **member_params)
            for _ in range(members)], *ensemble_rule(arch_params))
    values = validate_params(arch, arch_params)
    shape = _check_shape(in_shape, num_classes)
    mean_t, std_t = _check_stats(mean, std, shape[0])
    if classes and len(classes) != num_classes:
        raise ModelError(f"{len(classes)} class names given for {num_classes} classes")
    model = architecture(arch).build(shape, num_classes, mean_t, std_t, **values)
    model.meta = ModelMeta(
        arch=arch,
        arch_params=values,
        in_shape=shape,
        num_classes=num_classes,
        classes=tuple(classes),
        mean=mean_t,
        std=std_t,
        dataset=dataset,
    )
    return model
