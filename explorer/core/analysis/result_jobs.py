"""The Look Inside panel's jobs: core analysis jobs plus what must happen
off the UI thread first (loading built-ins, copying the model, reading the
images), each result saved to the run's ``.npz`` on the way."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

from explorer.core import accel, models
from explorer.core.analysis.channels import channel_importance_job
from explorer.core.analysis.features import feature_projection_job
from explorer.core.analysis.input_landscape import input_landscape_job
from explorer.core.analysis.landscape import weight_landscape_job
from explorer.core.analysis.result_files import saving_result
from explorer.core.analysis.slices import image_slice_job
from explorer.core.jobs import Event


def _saved(events: Iterator[Event], path: Path | None, meta: dict) -> Iterator[Event]:
    return saving_result(events, path, meta) if path is not None else events


def slice_with_builtins(model, extras: list[str], x, y, *, path, meta, device,
                        token, **kwargs) -> Iterator[Event]:
    """The session's model plus built-ins loaded here, off the UI thread."""
    nets = [model] + [accel.place(models.load_builtin(n), device).eval()
                      for n in extras]
    yield from _saved(image_slice_job(nets, x, y, token=token, **kwargs), path, meta)


def landscape_of(model, dataset, index: int, *, space: str, n: int = 0,
                 other: str = "", path, meta, token, **kwargs) -> Iterator[Event]:
    if space == "input":
        x, y = dataset[index]
        events = input_landscape_job(model, x, int(y), token=token, **kwargs)
    else:
        # The landscape moves the weights: work on a copy, never on the
        # model other panels are using.
        net = copy.deepcopy(model)
        x, y = dataset.as_tensors(0, min(n, len(dataset)))
        theirs = models.load(other) if other else None
        events = weight_landscape_job(net, x, y, other=theirs, token=token, **kwargs)
    yield from _saved(events, path, meta)


def features_of(model, dataset, n: int, *, path, meta, token,
                **kwargs) -> Iterator[Event]:
    x, y = dataset.as_tensors(0, min(n, len(dataset)))
    yield from _saved(feature_projection_job(model, x, y, token=token, **kwargs),
                      path, meta)


def channels_of(model, x, y: int, *, path, meta, token,
                **kwargs) -> Iterator[Event]:
    """CIFS channel importances of one image, clean vs adversarial. The block
    keeps its last mask on the module: work on a copy, so a job running the
    session's model at the same time cannot interleave its forward."""
    net = copy.deepcopy(model)
    yield from _saved(channel_importance_job(net, x, y, token=token, **kwargs),
                      path, meta)
