"""Loss landscape around one image in input space.

The loss of ``x + a·d1 + b·d2`` with ``d1`` the sign of the loss gradient
(or a PGD perturbation over eps) and ``d2`` a random sign vector, so the
coordinates are l-inf distances in pixels; a model that masks its gradient
(e.g. Fast-AT after catastrophic overfitting) shows a jagged surface here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.analysis.landscape import landscape_summary, result_of
from explorer.core.analysis.result_files import RESULT
from explorer.core.analysis.slices import axis, check_grid, raw_direction
from explorer.core.device import device_of
from explorer.core.inference import model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Progress
from explorer.core.jobs import Snapshot as SnapshotEvent
from explorer.core.params import ParamError

INPUT_DIRECTIONS = ("grad", "adv", "random")


@torch.inference_mode()
def _input_batch(model: nn.Module, xb: Tensor, yb: Tensor, d1: Tensor, d2: Tensor,
                 a: Tensor, b: Tensor, clamp: bool) -> tuple[Tensor, Tensor]:
    pts = torch.addr(xb.flatten().expand(len(a), -1), a, d1)
    pts.add_(torch.outer(b, d2))
    if clamp:
        pts.clamp_(0, 1)
    logits = model(pts.view(-1, *xb.shape[1:])).float()
    loss = F.cross_entropy(logits, yb.expand(len(pts)), reduction="none")
    return loss.cpu(), logits.argmax(1).cpu()


def input_landscape_job(
    model: nn.Module,
    x: Tensor,
    y: int,
    *,
    grid: int = 21,
    eps: float = 0.1,
    span: float | None = None,
    directions: Sequence[str] = ("grad", "random"),
    seed: int = 0,
    clamp: bool = True,
    batch_size: int = 2048,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Loss around one image ``x`` (C×H×W) on ``[-span, span]²`` (default
    ``span = 2·eps``) along two sign-like directions (``grad``: sign of the
    loss gradient; ``adv``: a PGD-eps perturbation divided by eps;
    ``random``: random signs). Result kind ``input``: ``coords``,
    ``coords_y``, ``loss``, ``pred``, ``image``, ``label``, ``directions``."""
    token = token or CancelToken()
    grid = check_grid(grid)
    kinds = tuple(directions)
    bad = [k for k in kinds if k not in INPUT_DIRECTIONS]
    if bad or len(kinds) != 2:
        raise ParamError(f"directions must be two of {', '.join(INPUT_DIRECTIONS)}"
                         f", got {','.join(kinds)}")
    if not 0 < eps <= 1:
        raise ParamError(f"eps must be in (0, 1], got {eps:g}")
    half = 2 * eps if span is None else float(span)
    if not half > 0:
        raise ParamError(f"span must be positive, got {span}")
    started = time.perf_counter()
    device = device_of(model)
    xb = x.detach().to(device, torch.float32).unsqueeze(0)
    yb = torch.tensor([int(y)], device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    yield Progress(0, 1, "directions")
    dirs = []
    for i, kind in enumerate(kinds):
        d = raw_direction(kind, model, xb, yb, eps=eps, steps=10, seed=seed,
                          nth=kinds[:i].count("adv"), generator=generator)[0]
        dirs.append(d.sign() if kind == "random" else d / eps if kind == "adv"
                    else d)
    coords = axis(-half, half, grid).to(device)
    a, b = coords.repeat(grid), coords.repeat_interleave(grid)
    d1, d2 = dirs[0].flatten(), dirs[1].flatten()
    losses, preds = [], []
    total = -(-grid * grid // batch_size)
    with model_frozen(model):
        for k, start in enumerate(range(0, grid * grid, batch_size)):
            token.check()
            part = slice(start, start + batch_size)
            loss, pred = _input_batch(model, xb, yb, d1, d2, a[part], b[part], clamp)
            losses.append(loss)
            preds.append(pred)
            yield Progress(k + 1, total, "input landscape")
    result = {
        "kind": "input",
        "coords": coords.cpu().numpy(),
        "coords_y": coords.cpu().numpy(),
        "loss": torch.cat(losses).view(grid, grid).numpy(),
        "pred": torch.cat(preds).view(grid, grid).numpy().astype(np.int16),
        "directions": torch.stack(dirs).cpu().numpy(),
        "direction_kinds": np.array(kinds),
        "image": x.detach().cpu().numpy().astype(np.float32),
        "label": np.int64(y),
        "eps": np.float32(eps),
    }
    yield SnapshotEvent(1, 1, result, RESULT)
    yield Done(landscape_summary(result, time.perf_counter() - started))


def input_landscape(model: nn.Module, x: Tensor, y: int,
                    **kwargs: Any) -> dict[str, Any]:
    """The result arrays of :func:`input_landscape_job` (same arguments)."""
    return result_of(input_landscape_job(model, x, y, **kwargs))
