"""Applying an inference-time wrapper (Mixup Inference) to a loaded model.

Mixup Inference mixes each input with clean samples; Pang et al. draw them
from the training set, so the mixup set is the first ``MIX_SET_SIZE`` images
of the data set's ``train`` split, or of the split at hand when there is no
train split. The CLI and the GUI both wrap through here, so they agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn

from explorer.core import data
from explorer.core.defenses.mixup_inference import (
    INFERENCE_WRAPPERS,
    wrap,
    wrapper_spec,
)
from explorer.core.device import device_of
from explorer.core.jobs import CancelToken, Done, Event, Progress
from explorer.core.params import ParamError, validate

MIX_SET_SIZE = 1000
TITLES = {"mixup-inference": "Mixup Inference"}


def wrapper_title(name: str) -> str:
    return TITLES.get(name, name)


def check_wrapper(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validated parameters of wrapper ``name``; ParamError naming the problem."""
    spec = wrapper_spec(name)  # unknown name: ParamError listing the known ones
    data_args = INFERENCE_WRAPPERS[name][2]
    if any(a in params for a in data_args):
        raise ParamError(f"{name}: {', '.join(data_args)} come from the data set")
    return validate(spec, params)


def mix_set(data_name: str, split: str, *, root: str | None = None,
            params: dict[str, Any] | None = None,
            n: int = MIX_SET_SIZE) -> tuple[Tensor, Tensor, str]:
    """(images, labels, "name train[:n]") of clean samples to mix with."""
    splits = data.info(data_name).splits
    source = "train" if "train" in splits else split
    dataset = data.load(data_name, source, root=root, **(params or {}))
    count = min(n, len(dataset))
    x, y = dataset.as_tensors(0, count)
    return x, y, f"{data_name} {source}[:{count}]"


def wrap_model(model: nn.Module, name: str, params: dict[str, Any],
               mix: tuple[Tensor, Tensor]) -> nn.Module:
    """``model`` inside wrapper ``name``; the result carries the model's ``meta``
    and a ``wrapper`` dict (name and parameters) saying it is wrapped."""
    values = check_wrapper(name, params)
    wrapped = wrap(name, model, mix_set_x=mix[0], mix_set_y=mix[1], **values)
    meta = getattr(model, "meta", None)
    if meta is not None:
        wrapped.meta = meta
    wrapped.wrapper = {"name": name, "params": values}
    return wrapped.to(device_of(model)).eval()


def wrap_model_job(model: nn.Module, name: str, params: dict[str, Any], *,
                   data_name: str, split: str, root: str | None = None,
                   data_params: dict[str, Any] | None = None,
                   token: CancelToken | None = None) -> Iterator[Event]:
    """Load the mixup set and wrap ``model``; Done({"model", "wrapper"})."""
    check_wrapper(name, params)
    yield Progress(0, 1, f"loading the {wrapper_title(name)} mixup set")
    x, y, described = mix_set(data_name, split, root=root, params=data_params)
    if token is not None:
        token.check()
    wrapped = wrap_model(model, name, params, (x, y))
    yield Progress(1, 1, "model wrapped")
    yield Done({"model": wrapped,
                "wrapper": {**wrapped.wrapper, "mix_set": described}})
