"""Per-image minimal adversarial distance, in l-inf or l2.

DeepFool gives each image an upper estimate: a misclassified point at that
distance exists. A binary search with PGD then tightens it: at each radius
PGD either finds an adversarial example (the distance is at most its actual
perturbation size) or not (the search moves outwards). Radii differ per image,
so the search runs PGD on balls whose radius is a per-image tensor, through
the attacks' shared gradient-ascent loop.

Images DeepFool cannot break get one PGD run at the largest budget the box
allows (1 for l-inf, √d for l2); images that even this leaves correct are
"unbroken": their distance is reported as that budget with ``broken`` False,
so every array stays finite and the median and histogram skip them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from explorer.core.attacks import create
from explorer.core.attacks.draws import ImageDraws
from explorer.core.attacks.iterative import gradient_ascent
from explorer.core.attacks.threat import RadiusBall
from explorer.core.data.batching import batches, num_batches
from explorer.core.device import device_of
from explorer.core.inference import logits_of, model_frozen
from explorer.core.jobs import (
    CancelToken,
    Done,
    Event,
    Metric,
    Progress,
    ProgressThrottle,
    Snapshot,
)
from explorer.core.params import Param, validate

DISTANCE_PARAMS = (
    Param("norm", str, "linf", "norm of the distance", choices=("linf", "l2")),
    Param("search_steps", int, 8, "binary-search halvings of each image's interval",
          minimum=1, maximum=30),
    Param("pgd_steps", int, 20, "PGD steps at each radius (step 2.5·radius/steps)",
          minimum=1, maximum=1000),
    Param("restarts", int, 1, "PGD restarts at each radius", minimum=1, maximum=20),
    Param("deepfool_steps", int, 50, "DeepFool iterations for the upper estimate",
          minimum=1, maximum=1000),
    Param("deepfool_classes", int, 4, "candidate classes DeepFool linearises "
          "(fewer is faster)", minimum=2, maximum=1000),
    Param("bins", int, 20, "histogram bins", minimum=1, maximum=1000),
)  # fmt: skip


def _pgd_at(model, x, y, radius, norm, cfg, seed, ids) -> tuple[Tensor, Tensor,
                                                                 Tensor]:
    """Per image: fooled by PGD within its radius, the size of what it found,
    and what it found. ``ids`` seed each image's own random start."""
    ball = RadiusBall(norm, radius)
    steps = cfg["pgd_steps"]
    with model_frozen(model):
        *_, last = gradient_ascent(
            model, x, y, None, ball, ImageDraws(seed, ids, x.device), steps=steps,
            alpha=2.5 / steps, random_start=True, restarts=cfg["restarts"],
            use_best=True, live=False)
    fooled = logits_of(model, last.x_adv).argmax(1) != y
    return fooled, ball.size(last.x_adv - x), last.x_adv


def _cap(norm: str, x: Tensor) -> float:
    return 1.0 if norm == "linf" else math.sqrt(x[0].numel())


def _search_batch(model, x, y, cfg, seed, token, ids) -> Iterator[Any]:
    """Yields progress labels, then (distance, lower, broken, correct, deepfool,
    example): ``example`` is the adversarial image found at each distance (the
    image itself where none was found, or where it is already misclassified)."""
    norm, cap = cfg["norm"], _cap(cfg["norm"], x)
    correct = logits_of(model, x).argmax(1) == y
    n = len(x)
    hi = torch.full((n,), cap, device=x.device)
    lo = torch.zeros(n, device=x.device)
    found = ~correct  # misclassified images are at distance 0
    best = x.clone()
    hi[found] = 0.0
    idx = correct.nonzero(as_tuple=True)[0]
    df = torch.full((n,), cap, device=x.device)
    if len(idx):
        atk = create("deepfool", model, seed=seed, norm=norm,
                     steps=cfg["deepfool_steps"],
                     num_classes=min(cfg["deepfool_classes"],
                                     logits_of(model, x[:1]).shape[1]))
        x_df = atk(x[idx], y[idx], ids=ids[idx])
        ok = logits_of(model, x_df).argmax(1) != y[idx]
        size = RadiusBall(norm, hi[idx]).size(x_df - x[idx])
        df[idx[ok]] = size[ok]
        hi[idx[ok]] = size[ok]
        best[idx[ok]] = x_df[ok]
        found[idx[ok]] = True
    yield "DeepFool"
    token.check()
    rest = (correct & ~found).nonzero(as_tuple=True)[0]
    if len(rest):  # DeepFool failed: try PGD at the largest budget the box allows
        fooled, size, x_adv = _pgd_at(model, x[rest], y[rest], hi[rest], norm, cfg,
                                      seed, ids[rest])
        hi[rest[fooled]] = size[fooled]
        best[rest[fooled]] = x_adv[fooled]
        found[rest[fooled]] = True
        lo[rest[~fooled]] = cap
    yield "PGD at the largest budget"
    active = (correct & found).nonzero(as_tuple=True)[0]
    for step in range(cfg["search_steps"]):
        token.check()
        if len(active):
            mid = (lo[active] + hi[active]) / 2
            fooled, size, x_adv = _pgd_at(model, x[active], y[active], mid, norm,
                                          cfg, None if seed is None else seed + step,
                                          ids[active])
            closer = fooled & (size <= hi[active])  # keep the smaller of the two
            hi[active[closer]] = size[closer]
            best[active[closer]] = x_adv[closer]
            lo[active[~fooled]] = mid[~fooled]
        yield f"binary search {step + 1}/{cfg['search_steps']}"
    distance = torch.where(found, hi, lo)
    yield distance, lo, found, correct, df, best


def _histogram(values: np.ndarray, bins: int, cap: float) -> tuple[list, list]:
    top = float(values.max()) if len(values) and values.max() > 0 else cap
    counts, edges = np.histogram(values, bins=bins, range=(0.0, top))
    return edges.tolist(), counts.tolist()


def minimal_distance(
    model: nn.Module,
    dataset: Dataset,
    *,
    n: int | None = 200,
    batch_size: int = 256,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
    keep_examples: bool = False,
    first: int = 0,
    **params: Any,
) -> Iterator[Event]:
    """Minimal adversarial distance of each of the first ``n`` images.

    ``params``: see ``DISTANCE_PARAMS`` (``norm`` "linf" or "l2",
    ``search_steps``, ``pgd_steps``, ``restarts``, ``deepfool_steps``,
    ``deepfool_classes``, ``bins``); bad values raise ParamError.
    Events: ``Progress`` per stage of each batch; after each batch a
    ``Snapshot`` with ``distances`` (of the broken, correctly classified
    images so far); ``Metric("median_distance")``. ``Done``: ``distances``,
    ``lower`` (largest radius at which PGD failed), ``deepfool`` (DeepFool's
    distance, the cap where it failed) as float64 arrays (n,); ``broken``,
    ``correct`` bool arrays; ``median`` (over correct and broken images; NaN if
    none), ``hist_edges``, ``hist_counts`` (lists, same images), ``n``,
    ``n_correct``, ``n_unbroken`` (correct images never fooled), ``cap``,
    ``norm``, ``params``, ``seconds``. Misclassified images have distance 0.
    ``keep_examples`` adds ``x_adv`` (float32, the images' shape): the
    adversarial image found at each distance, of exactly that size (the image
    itself where it is misclassified or unbroken).

    ``first``: the global index of ``dataset``'s first image (a shard of a
    larger set). Every random draw of image ``i`` depends on (seed,
    ``first + i``) alone, so neither the batch size nor a split into shards
    changes an image's distance.
    """
    token = token or CancelToken()
    cfg = validate(DISTANCE_PARAMS, params)
    if n is not None and n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dev = device_of(model, device)
    started = time.perf_counter()
    per_batch = 2 + cfg["search_steps"]
    total = num_batches(dataset, batch_size, n) * per_batch
    throttle, done = ProgressThrottle(0.01), 0
    parts: list[list[np.ndarray]] = [[] for _ in range(5)]
    examples: list[np.ndarray] = []
    cap = 1.0
    start = first
    for b, (x, y) in enumerate(batches(dataset, batch_size, n)):
        token.check()
        x, y = x.to(dev, torch.float32), y.to(dev)
        cap = _cap(cfg["norm"], x)
        ids = torch.arange(start, start + len(x), device=dev)
        start += len(x)
        for item in _search_batch(model, x, y, cfg, seed, token, ids):
            if isinstance(item, str):
                done += 1
                if throttle.due(done, total):
                    yield Progress(done, total, item)
                continue
            *arrays, best = item
            for part, t in zip(parts, arrays, strict=True):
                part.append(t.detach().cpu().numpy())
            if keep_examples:
                examples.append(best.detach().float().cpu().numpy())
        broken_so_far = _kept(parts)
        yield Snapshot(b, num_batches(dataset, batch_size, n),
                       {"distances": broken_so_far}, "distances")
    dist, lower, broken, correct, df = (np.concatenate(p) for p in parts)
    shown = dist[broken & correct].astype(np.float64)
    median = float(np.median(shown)) if len(shown) else float("nan")
    edges, counts = _histogram(shown, cfg["bins"], cap)
    yield Metric("median_distance", median)
    yield Done({
        "distances": dist.astype(np.float64), "lower": lower.astype(np.float64),
        "deepfool": df.astype(np.float64), "broken": broken, "correct": correct,
        "median": median, "hist_edges": edges, "hist_counts": counts,
        "n": len(dist), "n_correct": int(correct.sum()),
        "n_unbroken": int((correct & ~broken).sum()), "cap": cap,
        "norm": cfg["norm"], "params": cfg,
        "seconds": time.perf_counter() - started,
        **({"x_adv": np.concatenate(examples)} if keep_examples else {}),
    })  # fmt: skip


def _kept(parts: list[list[np.ndarray]]) -> np.ndarray:
    dist, _, broken, correct, _ = (np.concatenate(p) for p in parts)
    return dist[broken & correct].astype(np.float64)
