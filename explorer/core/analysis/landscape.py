"""Loss landscapes in weight space.

Weight space (Li et al., "Visualizing the loss landscape of neural nets"):
the loss of ``θ + a·d1 (+ b·d2)`` over a set of images, where each random
direction is *filter-normalised*: drawn from N(0, 1), then every filter (one
output channel of a convolution, one row of a linear layer) is rescaled to
the norm of the same filter of θ. One-dimensional parameters (biases, batch
norm scales and shifts) get a zero direction, as the paper's plots do, so
they stay at their trained values. Optionally the first axis runs from one
checkpoint to another (``a = 0`` is the model, ``a = 1`` the other one).
The model's weights are restored bit for bit afterwards, also on cancel.

Input-space landscapes are in :mod:`explorer.core.analysis.input_landscape`;
both share the summary and ``roughness`` defined here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.analysis.result_files import (  # re-exported for callers
    RESULT,
    ResultFileError,
    load_npz,
    save_npz,
)
from explorer.core.analysis.slices import axis, check_grid
from explorer.core.inference import model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Progress, ProgressThrottle
from explorer.core.jobs import Snapshot as SnapshotEvent
from explorer.core.params import ParamError

SPACES = ("weights", "input")
__all__ = ["ResultFileError", "filter_normalized_direction", "landscape_summary",
           "load_npz", "result_of", "roughness", "save_npz", "weight_landscape",
           "weight_landscape_job"]


def filter_normalized_direction(model: nn.Module,
                                generator: torch.Generator) -> list[Tensor]:
    """A random direction per parameter of ``model.parameters()``, filter-wise
    rescaled to the weights' filter norms; zero for 1-D parameters."""
    out = []
    for p in model.parameters():
        if p.dim() <= 1:
            out.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)
        d_norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        w_norm = p.detach().flatten(1).norm(dim=1)
        out.append(d * (w_norm / d_norm).view(-1, *[1] * (p.dim() - 1)))
    return out


@contextlib.contextmanager
def _weights_restored(params: Sequence[Tensor]) -> Iterator[list[Tensor]]:
    saved = [p.detach().clone() for p in params]
    try:
        yield saved
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)


def _other_params(model: nn.Module, other: Any) -> list[Tensor]:
    """Parameters of a second checkpoint (a module or a state dict)."""
    state = other.state_dict() if isinstance(other, nn.Module) else dict(other)
    out = []
    for name, p in model.named_parameters():
        if name not in state:
            raise ParamError(f"the other checkpoint lacks the parameter {name!r}")
        q = state[name]
        if tuple(q.shape) != tuple(p.shape):
            raise ParamError(f"the other checkpoint's {name!r} has shape "
                             f"{tuple(q.shape)}, the model's {tuple(p.shape)}")
        out.append(q.detach().to(p.device, p.dtype) - p.detach())
    return out


def _loss_and_acc(model: nn.Module, batches: Sequence[tuple[Tensor, Tensor]],
                  n: int) -> tuple[float, float]:
    loss = torch.zeros((), dtype=torch.float64, device=batches[0][0].device)
    correct = torch.zeros((), dtype=torch.int64, device=loss.device)
    for x, y in batches:
        logits = model(x)
        loss += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
    return float(loss) / n, float(correct) / n


def weight_landscape_job(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    dims: int = 2,
    grid: int = 21,
    span: float = 1.0,
    seed: int = 0,
    other: nn.Module | dict[str, Tensor] | None = None,
    batch_size: int = 1000,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Loss and accuracy on images ``x`` (N×C×H×W), labels ``y`` over a line
    (``dims=1``) or a ``grid``×``grid`` plane of weights.

    Random axes cover ``[-span, span]``; with ``other`` the first axis is the
    path to it and covers ``[-span/2, 1 + span/2]``. Yields Progress, a
    Snapshot ``result`` (kind ``weights-1d``/``weights-2d``: ``coords``,
    ``coords_y``, ``loss``, ``acc`` with ``loss[i, j]`` at ``(coords[j],
    coords_y[i])``), then Done with a summary.
    """
    token = token or CancelToken()
    if dims not in (1, 2):
        raise ParamError(f"dims must be 1 or 2, got {dims!r}")
    grid = check_grid(grid)
    if not span > 0:
        raise ParamError(f"span must be positive, got {span}")
    if len(x) == 0 or len(x) != len(y):
        raise ParamError(f"need images and as many labels, got {len(x)} and {len(y)}")
    started = time.perf_counter()
    params = list(model.parameters())
    device = params[0].device
    generator = torch.Generator(device=device).manual_seed(seed)
    if other is not None:
        d1 = _other_params(model, other)
        coords = axis(-span / 2, 1 + span / 2, grid)
    else:
        d1 = filter_normalized_direction(model, generator)
        coords = axis(-span, span, grid)
    coords_y = axis(-span, span, grid) if dims == 2 else torch.zeros(1)
    d2 = filter_normalized_direction(model, generator) if dims == 2 else None
    batches = [(x[i:i + batch_size].to(device), y[i:i + batch_size].to(device))
               for i in range(0, len(x), batch_size)]
    loss = np.zeros((len(coords_y), grid), np.float64)
    acc = np.zeros_like(loss)
    throttle = ProgressThrottle(0.01)
    total = loss.size
    # No grad/inference context spans a yield: it would stay on in the
    # consumer's thread while this generator is suspended.
    with model_frozen(model), _weights_restored(params) as base:
        for k in range(total):
            token.check()
            i, j = divmod(k, grid)
            a, b = float(coords[j]), float(coords_y[i])
            with torch.no_grad():
                for n, p in enumerate(params):
                    p.copy_(base[n]).add_(d1[n], alpha=a)
                    if d2 is not None:
                        p.add_(d2[n], alpha=b)
            with torch.inference_mode():
                loss[i, j], acc[i, j] = _loss_and_acc(model, batches, len(x))
            if throttle.due(k + 1, total):
                yield Progress(k + 1, total, "weight landscape")
    kind = "weights-2d" if dims == 2 else "weights-1d"
    result: dict[str, Any] = {
        "kind": kind,
        "coords": coords.numpy(),
        "loss": loss if dims == 2 else loss[0],
        "acc": acc if dims == 2 else acc[0],
        "n_images": np.int64(len(x)),
        "interpolated": np.bool_(other is not None),
    }
    if dims == 2:
        result["coords_y"] = coords_y.numpy()
    yield SnapshotEvent(1, 1, result, RESULT)
    yield Done(landscape_summary(result, time.perf_counter() - started))


def _centre_index(coords: np.ndarray) -> int:
    return int(np.abs(coords).argmin())


def landscape_summary(result: dict[str, Any], seconds: float) -> dict[str, Any]:
    loss = np.asarray(result["loss"])
    j = _centre_index(result["coords"])
    centre = loss[..., j] if loss.ndim == 1 else loss[_centre_index(
        result["coords_y"]), j]
    out = {"seconds": seconds, "kind": result["kind"],
           "grid": len(result["coords"]), "loss_centre": float(centre),
           "loss_min": float(loss.min()), "loss_max": float(loss.max())}
    if "acc" in result:
        acc = np.asarray(result["acc"])
        out["acc_centre"] = float(acc[j] if acc.ndim == 1 else acc[
            _centre_index(result["coords_y"]), j])
    if loss.ndim == 2:
        out["roughness"] = roughness(loss)
    return out


def roughness(surface: np.ndarray) -> float:
    """Mean |discrete Laplacian| over mean |first difference| of a surface:
    it shrinks with the grid step on a smooth surface (0.4 for a paraboloid
    on 21×21) and stays above 1 on a jagged one (about 3 for uniform noise)."""
    s = np.asarray(surface, np.float64)
    if min(s.shape) < 3:
        return 0.0
    lap = (s[2:, 1:-1] + s[:-2, 1:-1] + s[1:-1, 2:] + s[1:-1, :-2]
           - 4 * s[1:-1, 1:-1])
    first = np.concatenate([np.diff(s, axis=0).ravel(), np.diff(s, axis=1).ravel()])
    scale = np.abs(first).mean()
    return float(np.abs(lap).mean() / scale) if scale > 0 else 0.0


def result_of(events: Iterator[Event]) -> dict[str, Any]:
    for event in events:
        if isinstance(event, SnapshotEvent) and event.label == RESULT:
            return event.arrays
    raise RuntimeError("the landscape job ended without a result")


def weight_landscape(model: nn.Module, x: Tensor, y: Tensor,
                     **kwargs: Any) -> dict[str, Any]:
    """The result arrays of :func:`weight_landscape_job` (same arguments)."""
    return result_of(weight_landscape_job(model, x, y, **kwargs))
