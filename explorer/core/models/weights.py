"""Fitting a loaded state_dict into a registered architecture, with clear errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer.core.models import zoo
from explorer.core.models.matching import file_channels, suggestion
from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.normalize import float32_values
from explorer.core.models.registry import create, names
from explorer.core.params import ParamError

NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_SHOWN = 3


def _shape_text(shape: torch.Size | tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) or "scalar"


def _first(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return ", ".join(repr(k) for k in keys[:_SHOWN]) + more


def unwrap_state_dict(path: Path, obj: Any) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, also when nested under 'state_dict' or 'model'."""
    for _ in range(3):
        if not isinstance(obj, Mapping) or all(
            isinstance(v, torch.Tensor) for v in obj.values()
        ):
            break
        nested = next(
            (k for k in NESTING_KEYS if isinstance(obj.get(k), Mapping)), None
        )
        if nested is None:
            break
        obj = obj[nested]
    if not isinstance(obj, Mapping):
        raise ModelError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    odd = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if odd or not obj:
        raise ModelError(
            f"{path}: not a state_dict of tensors "
            f"(entries: {_first(odd or ['none'])}); "
            f"weights are looked for at the top level or under "
            f"{', '.join(repr(k) for k in NESTING_KEYS)}"
        )
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _guess_in_shape(state: Mapping[str, torch.Tensor]) -> tuple[int, int, int]:
    first = state.get("body.0.weight")
    if first is not None and first.dim() == 4:
        channels = int(first.shape[1])
        return (channels, 28, 28) if channels == 1 else (channels, 32, 32)
    flat = state.get("body.1.weight")
    if flat is not None and flat.dim() == 2 and int(flat.shape[1]) == 3 * 32 * 32:
        return (3, 32, 32)
    return (1, 28, 28)


def apply_given(meta: ModelMeta, given: Mapping[str, Any]) -> ModelMeta:
    """``meta`` with the caller's explicit values taking precedence."""
    changes = dict(given)
    if (
        "arch" in changes
        and changes["arch"] != meta.arch
        and "arch_params" not in changes
    ):
        changes["arch_params"] = {}
    resized = changes.get("num_classes", len(meta.classes)) != len(meta.classes)
    if resized and "classes" not in changes:
        changes["classes"] = ()
    if "classes" in changes and "num_classes" not in changes:
        changes["num_classes"] = len(changes["classes"])
    return dataclasses.replace(meta, **changes)


def _meta_without_header(
    path: Path, state: Mapping[str, torch.Tensor], given
) -> ModelMeta:
    if "arch" not in given:
        raise ModelError(
            f"{path}: the file does not say which architecture it holds; "
            f"pass --arch (one of: {', '.join(names())}, or a library's "
            f"torchvision:NAME / timm:NAME)"
        )
    if zoo.is_zoo(given["arch"]):
        # A bare library network: no Normalize of ours (identity unless
        # --mean/--std), the classes from its last linear layer.
        linear = [v for v in state.values() if v.dim() == 2]
        conv = next((v for v in state.values() if v.dim() == 4), None)
        channels = int(conv.shape[1]) if conv is not None else 3
        return ModelMeta(
            arch=given["arch"],
            in_shape=(channels, 28, 28) if channels == 1 else (channels, 32, 32),
            num_classes=int(linear[-1].shape[0]) if linear else 10,
            mean=(0.0,), std=(1.0,))
    head = state.get("head.weight")
    num_classes = int(head.shape[0]) if head is not None and head.dim() == 2 else 10
    return ModelMeta(
        arch=given["arch"], in_shape=_guess_in_shape(state), num_classes=num_classes
    )


def _into_zoo(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A bare library network's keys as a ZooModel holds them (``net.``)."""
    if any(k.startswith(zoo.NET) for k in state):
        return state
    return {k if _is_normalize(k, "mean", "std") else zoo.NET + k: v
            for k, v in state.items()}


def _is_normalize(key: str, *buffers: str) -> bool:
    """A buffer of the model's (or an ensemble member's) input Normalize."""
    parts = key.split(".")
    return len(parts) >= 2 and parts[-2] == "normalize" and parts[-1] in buffers


def key_problems(expected: Mapping[str, torch.Tensor],
                 state: Mapping[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and misshapen keys of ``state`` (none: it fits)."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k!r} is {_shape_text(state[k].shape)} in the file but "
        f"{_shape_text(v.shape)} in the model"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_first(unexpected)}")
    if wrong:
        problems.append("shape mismatch: " + "; ".join(wrong[:_SHOWN]))
    return problems


def _mismatch(path: Path, meta: ModelMeta, model: nn.Module, state) -> str | None:
    expected = model.state_dict()
    problems = key_problems(expected, state)
    if not problems:
        return None
    params = ", ".join(f"{k}={v}" for k, v in meta.arch_params.items())
    channels = file_channels(state, meta.in_shape[0] if meta.in_shape else 3)
    hint = suggestion(state, meta.arch, expected, channels, meta.num_classes)
    return (
        f"{path}: the weights do not fit architecture '{meta.arch}'"
        f"{f' ({params})' if params else ''} with {meta.describe_input()}: "
        + "; ".join(problems) + (f". {hint}" if hint else "")
    )


def build(
    path: Path,
    state: dict[str, torch.Tensor],
    meta: ModelMeta | None,
    given: Mapping[str, Any],
    fmt: str,
) -> nn.Module:
    """Create the architecture ``meta`` describes and load ``state`` into it."""
    meta = meta if meta is not None else _meta_without_header(path, state, given)
    meta = apply_given(meta, given)
    if zoo.is_zoo(meta.arch):
        state = _into_zoo(state)
    # An ensemble keeps one Normalize per member ("members.0.normalize.mean").
    mean_key = next((k for k in state if _is_normalize(k, "mean")), None)
    std_key = mean_key[: -len("mean")] + "std" if mean_key else None
    if "mean" in given or "std" in given or std_key not in state:
        for key in [k for k in state if _is_normalize(k, "mean", "std")]:
            del state[key]
    else:
        meta.mean = float32_values(state[mean_key])
        meta.std = float32_values(state[std_key])
    try:
        model = create(
            meta.arch,
            in_shape=meta.in_shape or (1, 28, 28),
            num_classes=meta.num_classes,
            mean=meta.mean,
            std=meta.std,
            classes=meta.classes,
            dataset=meta.dataset,
            **meta.arch_params,
        )
    except (ModelError, ParamError) as exc:
        raise ModelError(f"{path}: {exc}") from None
    for key, value in model.state_dict().items():
        if _is_normalize(key, "mean", "std"):
            state.setdefault(key, value)
    problem = _mismatch(path, model.meta, model, state)
    if problem:
        raise ModelError(problem)
    model.load_state_dict(state)
    model.meta = dataclasses.replace(
        model.meta, training=dict(meta.training), format=fmt, source=str(path)
    )
    return model


class ProbeError(ModelError):
    """A forward pass on a zero batch failed; the message is the short reason."""


def probe_outputs(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Number of outputs of one forward pass on zeros of ``in_shape``."""
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *in_shape))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ProbeError(lines[-1][:300] if lines else type(exc).__name__) from None
    return int(out.shape[-1])


def probe_classes(path: Path, model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Like :func:`probe_outputs`, with a ModelError naming the file."""
    try:
        return probe_outputs(model, in_shape)
    except ProbeError as exc:
        shape = _shape_text(tuple(in_shape))
        raise ModelError(f"{path}: model fails on {shape} inputs ({exc})") from None
