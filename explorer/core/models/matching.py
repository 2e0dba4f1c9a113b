"""Which architecture a state_dict that fits nowhere most resembles.

When the weights a user loads do not fit the architecture they named, the
error names the closest known one (the app's own and torchvision's, built
on the ``meta`` device so no memory is spent) and puts the first keys that
differ side by side, which is usually enough to see what went wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import cache

import torch

from explorer.core import quiet
from explorer.core.models import zoo

Shapes = dict[str, tuple[int, ...]]
_SIDE_BY_SIDE = 3


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) or "scalar"


@cache
def _candidate(arch: str, channels: int, num_classes: int) -> Shapes | None:
    """``arch``'s keys and shapes (without our Normalize), or None if it cannot
    be built for these inputs."""
    from explorer.core.models.registry import create

    shape = (channels, 28, 28) if channels == 1 else (channels, 32, 32)
    try:
        with quiet.guarded(), torch.device("meta"):
            warnings.simplefilter("ignore")
            model = create(arch, in_shape=shape, num_classes=num_classes,
                           mean=(0.0,), std=(1.0,))
    except Exception:  # noqa: BLE001 - a builder that cannot run on meta is no candidate
        return None
    return {k.removeprefix(zoo.NET): tuple(v.shape)
            for k, v in model.state_dict().items()
            if k.split(".")[-2:-1] != ["normalize"]}


def _candidates() -> list[str]:
    from explorer.core.models.registry import names

    return [*names(), *zoo.names("torchvision")]


def _fit(file: Shapes, model: Shapes) -> tuple[int, int]:
    same = sum(1 for k, s in file.items() if model.get(k) == s)
    named = sum(1 for k in file if k in model)
    return same, named


def file_channels(state: Mapping[str, torch.Tensor], default: int) -> int:
    """The input channels of the file's first convolution."""
    conv = next((v for v in state.values() if v.dim() == 4), None)
    return int(conv.shape[1]) if conv is not None else default


def closest(state: Mapping[str, torch.Tensor], channels: int,
            num_classes: int) -> tuple[str, int, Shapes] | None:
    """The architecture most of whose weights the file holds: ``(arch,
    weights that fit, its keys)``, or None when nothing shares a key."""
    file = _file_shapes(state)
    best: tuple[tuple[int, int, int], str, Shapes] | None = None
    for arch in _candidates():
        keys = _candidate(arch, channels, num_classes)
        if keys is None:
            continue
        same, named = _fit(file, keys)
        score = (same, named, -abs(len(keys) - len(file)))
        if named and (best is None or score > best[0]):
            best = (score, arch, keys)
    return None if best is None else (best[1], best[0][0], best[2])


def _file_shapes(state: Mapping[str, torch.Tensor]) -> Shapes:
    return {k.removeprefix(zoo.NET): tuple(v.shape) for k, v in state.items()
            if k.split(".")[-2:-1] != ["normalize"]}


def side_by_side(state: Mapping[str, torch.Tensor], model: Shapes, name: str) -> str:
    """The first keys that differ, the file's beside the model's, in order."""
    file = _file_shapes(state)
    only_file = [k for k, s in file.items() if model.get(k) != s]
    only_model = [k for k, s in model.items() if file.get(k) != s]
    pairs = []
    for i in range(min(_SIDE_BY_SIDE, max(len(only_file), len(only_model)))):
        left = (f"{only_file[i]!r} {_shape(file[only_file[i]])}"
                if i < len(only_file) else "—")
        right = (f"{only_model[i]!r} {_shape(model[only_model[i]])}"
                 if i < len(only_model) else "—")
        pairs.append(f"{left} | {right}")
    return f"first differences (file | {name}): " + "; ".join(pairs)


def suggestion(state: Mapping[str, torch.Tensor], arch: str,
               model: Mapping[str, torch.Tensor], channels: int,
               num_classes: int) -> str:
    """The closest architecture if it is not ``arch`` (whose weights are
    ``model``), and the first differences from it."""
    found = closest(state, channels, num_classes)
    if found is None or found[0] == arch:
        named = _file_shapes(model)
        if set(_file_shapes(state)) == set(named):
            return ""  # the same keys: the shape mismatches already say it all
        return side_by_side(state, named, arch)
    best, fit, keys = found
    total = len(_file_shapes(state))
    if fit == total == len(keys):
        return f"these are the weights of {best}: pass --arch {best}"
    return (f"closest known architecture: {best} ({fit} of {total} weights fit; "
            f"--arch {best}); " + side_by_side(state, keys, best))
