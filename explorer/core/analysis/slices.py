"""Decision regions on a 2-D slice of image space through one image.

The plane is ``x + a·d1 + b·d2`` with ``d1, d2`` orthonormal (l2) directions
built from two kinds among ``adv`` (a PGD perturbation of the first model; a
second ``adv`` is a targeted PGD towards another class), ``grad`` (the sign
of the loss gradient) and ``random`` (Gaussian), then Gram–Schmidt. Every
model is evaluated on the same grid of planes points, in large batches
without autograd. Coordinates are l2 distances in pixel units.

Grid layout: ``pred[m, i, j]`` is model m's class at ``a = coords[j]``,
``b = coords[i]`` (rows follow d2, columns d1), so it draws as a row-major
image with d1 horizontal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.analysis.result_files import RESULT
from explorer.core.device import device_of
from explorer.core.inference import model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Progress, ProgressThrottle
from explorer.core.jobs import Snapshot as SnapshotEvent
from explorer.core.params import ParamError

DIRECTION_KINDS = ("adv", "grad", "random")
BALL_ANGLES = 360


def check_grid(grid: int, name: str = "grid") -> int:
    if isinstance(grid, bool) or not isinstance(grid, int) or not 2 <= grid <= 2001:
        raise ParamError(f"{name} must be an integer in [2, 2001], got {grid!r}")
    return grid


def axis(lo: float, hi: float, grid: int) -> Tensor:
    """``grid`` evenly spaced values from lo to hi, computed in float64 so a
    symmetric axis with an odd count has exactly 0 in the middle."""
    steps = torch.arange(grid, dtype=torch.float64) / (grid - 1)
    return (lo + (hi - lo) * steps).float()


def check_directions(kinds: Sequence[str] | str) -> tuple[str, str]:
    if isinstance(kinds, str):
        kinds = tuple(k.strip() for k in kinds.split(","))
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in DIRECTION_KINDS]
    if unknown:
        raise ParamError(f"unknown direction {unknown[0]!r} (choose from "
                         f"{', '.join(DIRECTION_KINDS)})")
    if len(kinds) != 2:
        raise ParamError(f"directions must name exactly two kinds, got {len(kinds)}")
    return kinds  # type: ignore[return-value]


def _pgd(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int,
         seed: int, target: Tensor | None = None) -> Tensor:
    atk = attacks.create("pgd", model, seed=seed, eps=eps, steps=steps,
                         alpha=2.5 * eps / steps)
    return atk(x, y, target)


@torch.enable_grad()
def _gradient_sign(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    with model_frozen(model):
        x = x.detach().requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def raw_direction(kind: str, model: nn.Module, x: Tensor, y: Tensor, *,
                  eps: float, steps: int, seed: int, nth: int,
                  generator: torch.Generator) -> Tensor:
    """One un-normalised direction for a batch of one image ``x`` (1×C×H×W)."""
    if kind == "random":
        return torch.randn(x.shape, generator=generator, device=x.device)
    if kind == "grad":
        return _gradient_sign(model, x, y)
    if nth == 0:
        return _pgd(model, x, y, eps=eps, steps=steps, seed=seed) - x
    # A second adversarial direction: towards the likeliest class that is
    # neither the true one nor where the first attack went.
    with torch.no_grad(), model_frozen(model):
        first = model(_pgd(model, x, y, eps=eps, steps=steps, seed=seed)).argmax(1)
        logits = model(x)
    logits[0, y] = logits[0, first] = -torch.inf
    if not torch.isfinite(logits).any():
        raise ParamError("a second adversarial direction needs at least 3 classes")
    return _pgd(model, x, y, eps=eps, steps=steps, seed=seed + 1,
                target=logits.argmax(1)) - x


def orthonormal_plane(d1: Tensor, d2: Tensor) -> Tensor:
    """Gram–Schmidt on two directions of the same shape; (2, *shape)."""
    u = d1.flatten().double()
    v = d2.flatten().double()
    if float(u.norm()) == 0.0:
        raise ParamError("the first direction is zero (the attack did not move "
                         "the image: try a larger eps)")
    u = u / u.norm()
    v = v - (v @ u) * u
    if float(v.norm()) <= 1e-6 * float(d2.flatten().double().norm()) + 1e-12:
        raise ParamError("the two directions are (nearly) parallel or the second "
                         "is zero; choose other kinds")
    v = v / v.norm()
    return torch.stack([u, v]).float().reshape(2, *d1.shape)


def ball_outline(d: Tensor, eps: float, n: int = BALL_ANGLES) -> np.ndarray:
    """The l-inf ball of radius eps cut by the plane, as (n, 2) plane points:
    along angle θ it reaches ``eps / ‖cos θ·d1 + sin θ·d2‖_inf``."""
    theta = torch.linspace(0, 2 * np.pi, n, dtype=torch.float64)
    unit = torch.stack([theta.cos(), theta.sin()], 1)
    flat = d.detach().cpu().flatten(1).double()
    reach = eps / (unit @ flat).abs().amax(1).clamp_min(1e-12)
    return (unit * reach[:, None]).float().numpy()


@torch.inference_mode()
def grid_predictions(models: Sequence[nn.Module], x: Tensor, plane: Tensor,
                     coords: Tensor, *, clamp: bool, batch_size: int,
                     token: CancelToken, progress=None) -> tuple[Tensor, Tensor]:
    """Classes and max softmax probability of every model on the grid."""
    g = len(coords)
    a = coords.repeat(g)               # column coordinate varies fastest
    b = coords.repeat_interleave(g)
    flat_x, d1, d2 = x.flatten(), plane[0].flatten(), plane[1].flatten()
    preds = torch.empty(len(models), g * g, dtype=torch.int64)
    probs = torch.empty(len(models), g * g)
    total = len(models) * -(-g * g // batch_size)
    done = 0
    for m, model in enumerate(models):
        for start in range(0, g * g, batch_size):
            token.check()
            sl = slice(start, start + batch_size)
            points = torch.addr(flat_x.expand(len(a[sl]), -1), a[sl], d1)
            points.add_(torch.outer(b[sl], d2))
            if clamp:
                points.clamp_(0, 1)
            logits = model(points.view(-1, *x.shape[1:]))
            p = logits.float().softmax(1).max(1)
            preds[m, sl], probs[m, sl] = p.indices.cpu(), p.values.cpu()
            done += 1
            if progress is not None:
                progress(done, total)
    return preds.view(-1, g, g), probs.view(-1, g, g)


def image_slice_job(
    models: Sequence[nn.Module],
    x: Tensor,
    y: int,
    *,
    directions: Sequence[str] | str = ("adv", "random"),
    grid: int = 101,
    span: float | None = None,
    eps: float = 0.1,
    steps: int = 10,
    seed: int = 0,
    clamp: bool = True,
    batch_size: int = 2048,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """The slice as a job: Progress, then a Snapshot labelled ``result`` with
    the arrays of :func:`image_slice`, then Done with a JSON-friendly summary.

    ``x`` is one image (C×H×W, [0, 1]); the first model makes the ``adv`` and
    ``grad`` directions. ``span``: half-width of the square in plane units
    (default: three times the eps-ball's reach).
    """
    token = token or CancelToken()
    kinds = check_directions(directions)
    grid = check_grid(grid)
    if not models:
        raise ParamError("image_slice needs at least one model")
    if not 0 < eps <= 1:
        raise ParamError(f"eps must be in (0, 1], got {eps:g}")
    if span is not None and not span > 0:
        raise ParamError(f"span must be positive, got {span}")
    started = time.perf_counter()
    device = device_of(models[0])
    xb = x.detach().to(device, torch.float32).unsqueeze(0)
    yb = torch.tensor([int(y)], device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    yield Progress(0, 1, "directions")
    raw = [raw_direction(kind, models[0], xb, yb, eps=eps, steps=steps, seed=seed,
                         nth=kinds[:i].count("adv"), generator=generator)
           for i, kind in enumerate(kinds)]
    plane = orthonormal_plane(raw[0][0], raw[1][0])
    ball = ball_outline(plane, eps)
    radius = float(np.linalg.norm(ball, axis=1).max())
    half = float(span) if span is not None else 3.0 * radius
    coords = axis(-half, half, grid).to(device)
    # Each model's own adversarial point, projected onto the plane.
    adv_points, offplane, adv_pred = [], [], []
    for i, model in enumerate(models):
        token.check()
        delta = (_pgd(model, xb, yb, eps=eps, steps=steps, seed=seed) - xb)[0]
        inplane = plane.flatten(1) @ delta.flatten()
        adv_points.append(inplane.cpu().numpy())
        offplane.append(float((delta.flatten() - inplane @ plane.flatten(1)).norm()))
        with torch.no_grad(), model_frozen(model):
            adv_pred.append(int(model(xb + delta).argmax(1)))
        yield Progress(i + 1, len(models), "adversarial points")
    throttle = ProgressThrottle(0.02)
    events: list[Progress] = []

    def note(done: int, total: int) -> None:
        if throttle.due(done, total):
            events.append(Progress(done, total, "grid"))

    preds, probs = [], []
    for model in models:
        with model_frozen(model):
            p, q = grid_predictions([model], xb, plane.to(device), coords,
                                    clamp=clamp, batch_size=batch_size,
                                    token=token, progress=note)
        preds.append(p[0])
        probs.append(q[0])
        yield from events
        events.clear()
    result = {
        "kind": "slice",
        "coords": coords.cpu().numpy(),
        "pred": torch.stack(preds).numpy().astype(np.int16),
        "max_prob": torch.stack(probs).numpy().astype(np.float32),
        "directions": plane.cpu().numpy(),
        "direction_kinds": np.array(kinds),
        "origin": np.zeros(2, np.float32),
        "adv_points": np.array(adv_points, np.float32),
        "adv_offplane": np.array(offplane, np.float32),
        "adv_pred": np.array(adv_pred, np.int64),
        "ball": ball,
        "ball_radius": np.float32(radius),
        "image": x.detach().cpu().numpy().astype(np.float32),
        "label": np.int64(y),
        "eps": np.float32(eps),
    }
    seconds = time.perf_counter() - started
    yield SnapshotEvent(1, 1, result, RESULT)
    yield Done(slice_summary(result, seconds))


def slice_summary(result: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Scalars for the run record: per model the share of the square that
    keeps the image's class, and its class at the centre."""
    pred = result["pred"]
    g = pred.shape[-1]
    return {
        "seconds": seconds,
        "grid": g,
        "models": int(pred.shape[0]),
        "span": float(result["coords"][-1]),
        "ball_radius": float(result["ball_radius"]),
        "centre_pred": [int(p[g // 2, g // 2]) for p in pred],
        "label_share": [float((p == int(result["label"])).mean()) for p in pred],
        "adv_pred": [int(v) for v in result["adv_pred"]],
    }


def image_slice(models: Sequence[nn.Module], x: Tensor, y: int,
                **kwargs: Any) -> dict[str, Any]:
    """The result arrays of :func:`image_slice_job` (same arguments)."""
    for event in image_slice_job(models, x, y, **kwargs):
        if isinstance(event, SnapshotEvent) and event.label == RESULT:
            return event.arrays
    raise RuntimeError("image_slice_job ended without a result")
