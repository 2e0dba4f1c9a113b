"""Applying an inference-time wrapper (Mixup Inference, bit-depth) to a
loaded model.

Mixup Inference mixes each input with clean samples; Pang et al. draw them
from the training set, so the mixup set is the first ``MIX_SET_SIZE`` images
of the data set's ``train`` split, or of the split at hand when there is no
train split. Bit-depth reduction needs no data. The CLI and the GUI both wrap
through here, so they agree, and both say what each wrapper does to
gradients (:func:`wrapper_note`): Mixup Inference is randomized (judge it
with EOT), bit-depth non-differentiable (judge it with BPDA).
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
TITLES = {"mixup-inference": "Mixup Inference", "bit-depth": "bit-depth"}
NOTES = {
    "mixup-inference": "inference-time, randomized defense: gradients through "
                       "it may be obfuscated — judge it with adaptive attacks "
                       "(e.g. EOT)",
    "bit-depth": "inference-time, non-differentiable defense: its rounding has "
                 "zero gradient (shattered gradients), so plain gradient attacks "
                 "stall — judge it with BPDA (identity)",
}


def wrapper_title(name: str) -> str:
    return TITLES.get(name, name)


def wrapper_label(wrapper: dict[str, Any]) -> str:
    """A wrapper dict (``name``, ``params``) in a few words: "Mixup
    Inference", "bit-depth (3 bits)"."""
    title = wrapper_title(wrapper["name"])
    if wrapper["name"] == "bit-depth":
        bits = wrapper["params"]["bits"]
        return f"{title} ({bits} bit{'s' if bits != 1 else ''})"
    return title


def wrapper_note(name: str) -> str:
    """What the wrapper does to gradients, and the adaptive attack it needs."""
    return NOTES.get(name, "inference-time defense: gradients through it may be "
                           "obfuscated — judge it with adaptive attacks")


def needs_mix_set(name: str) -> bool:
    """Whether wrapper ``name`` mixes with clean samples from the data set."""
    return bool(INFERENCE_WRAPPERS[name][2]) if name in INFERENCE_WRAPPERS else False


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
               mix: tuple[Tensor, Tensor] | None = None) -> nn.Module:
    """``model`` inside wrapper ``name``; the result carries the model's ``meta``
    and a ``wrapper`` dict (name and parameters) saying it is wrapped. ``mix``
    is the mixup set, for the wrappers that need one (:func:`needs_mix_set`)."""
    values = check_wrapper(name, params)
    data_args = {}
    if needs_mix_set(name):
        if mix is None:
            raise ParamError(f"{name} needs a mixup set")
        data_args = {"mix_set_x": mix[0], "mix_set_y": mix[1]}
    wrapped = wrap(name, model, **data_args, **values)
    meta = getattr(model, "meta", None)
    if meta is not None:
        wrapped.meta = meta
    wrapped.wrapper = {"name": name, "params": values}
    return wrapped.to(device_of(model)).eval()


def wrap_model_job(model: nn.Module, name: str, params: dict[str, Any], *,
                   data_name: str, split: str, root: str | None = None,
                   data_params: dict[str, Any] | None = None,
                   token: CancelToken | None = None) -> Iterator[Event]:
    """Load the mixup set (when the wrapper needs one) and wrap ``model``;
    Done({"model", "wrapper"}), the wrapper dict with "mix_set" when loaded."""
    check_wrapper(name, params)
    mix, extra = None, {}
    if needs_mix_set(name):
        yield Progress(0, 1, f"loading the {wrapper_title(name)} mixup set")
        x, y, described = mix_set(data_name, split, root=root, params=data_params)
        mix, extra = (x, y), {"mix_set": described}
        if token is not None:
            token.check()
    wrapped = wrap_model(model, name, params, mix)
    yield Progress(1, 1, "model wrapped")
    yield Done({"model": wrapped, "wrapper": {**wrapped.wrapper, **extra}})
