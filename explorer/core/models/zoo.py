"""Architectures from model libraries, by name: ``torchvision:resnet18``,
``timm:resnet18`` (when timm is installed).

A library network is built untrained (nothing is ever downloaded) with the
data set's number of classes, and wrapped as :class:`ZooModel`: the app's
``Normalize`` first, so the model takes [0, 1] pixels like every other, then
the network under ``net``. Weights saved by a training script for the bare
network (keys without the ``net.`` prefix) are fitted by
:func:`explorer.core.models.weights.build`.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

import torch
from torch import nn

from explorer.core import quiet
from explorer.core.models.meta import ModelError
from explorer.core.models.normalize import Normalize

LIBRARIES = ("torchvision", "timm")
NET = "net."  # the library network's keys inside a ZooModel


def is_zoo(arch: str) -> bool:
    """Whether ``arch`` names a library architecture (``library:name``)."""
    return arch.partition(":")[0] in LIBRARIES and ":" in arch


def timm_available() -> bool:
    return importlib.util.find_spec("timm") is not None


@cache
def _torchvision_names() -> tuple[str, ...]:
    from torchvision import models as tv

    return tuple(tv.list_models(module=tv))


def _timm() -> Any:
    """timm, imported without its deprecation notes (old versions use
    torch.jit.interface)."""
    with quiet.guarded():
        warnings.simplefilter("ignore", FutureWarning)
        import timm
    return timm


@cache
def _timm_names() -> tuple[str, ...]:
    return tuple(_timm().list_models())


def names(library: str | None = None) -> list[str]:
    """``library:name`` for every classification builder we can offer."""
    out = []
    if library in (None, "torchvision"):
        out += [f"torchvision:{n}" for n in _torchvision_names()]
    if library in (None, "timm") and timm_available():
        out += [f"timm:{n}" for n in _timm_names()]
    return out


def check_name(arch: str) -> None:
    """A ModelError unless ``arch`` is a library architecture we can build."""
    _builder(arch)


def _builder(arch: str):
    library, _, name = arch.partition(":")
    if library == "torchvision":
        if name not in _torchvision_names():
            raise ModelError(
                f"unknown torchvision architecture {name!r} (classification models "
                f"only, e.g. resnet18, vgg11, efficientnet_b0; "
                f"`explorer models archs` lists them)"
            )
        from torchvision import models as tv

        builder = tv.get_model_builder(name)
        return lambda num_classes: builder(weights=None, num_classes=num_classes)
    if library == "timm":
        if not timm_available():
            raise ModelError(
                f"{arch!r} needs timm, which is not installed "
                f"(pip install 'robustness-explorer[zoo]')"
            )
        timm = _timm()
        if name not in _timm_names():
            raise ModelError(f"unknown timm architecture {name!r}")
        return lambda num_classes: timm.create_model(
            name, pretrained=False, num_classes=num_classes)
    raise ModelError(
        f"unknown model library {library!r} (known: {', '.join(LIBRARIES)})")


def description(arch: str) -> str:
    library, _, name = arch.partition(":")
    return f"{name} from {library} (untrained unless weights are loaded)"


class ZooModel(nn.Module):
    """``normalize`` -> a library network ``net`` -> logits."""

    def __init__(self, net: nn.Module, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    @property
    def head(self) -> nn.Linear:
        """The network's last linear layer (its classifier)."""
        last = None
        for module in self.net.modules():
            if isinstance(module, nn.Linear):
                last = module
        if last is None:
            raise ModelError(
                f"{type(self.net).__name__} has no final linear layer, so its "
                f"penultimate features cannot be read")
        return last

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the last linear layer receives, shape (N, D)."""
        seen: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(
            lambda _m, args: seen.append(args[0]))
        try:
            self.forward(x)
        finally:
            hook.remove()
        return seen[-1].flatten(1)


def build(arch: str, in_shape: Sequence[int], num_classes: int,
          mean: Sequence[float], std: Sequence[float]) -> ZooModel:
    """A freshly initialised library network for ``in_shape`` inputs."""
    net = _builder(arch)(num_classes)
    model = ZooModel(net, mean, std)
    channels = _first_conv_channels(net)
    if channels is not None and channels != in_shape[0]:
        raise ModelError(
            f"{arch} takes {channels}-channel images, not {in_shape[0]}-channel ones")
    return model


def _first_conv_channels(net: nn.Module) -> int | None:
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    return None
