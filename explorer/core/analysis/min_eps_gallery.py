"""Each image's minimal eps with the adversarial image found at it: what the
gallery opened from an accuracy-vs-eps curve shows.

:func:`min_eps_examples` is :func:`~explorer.core.analysis.distance.minimal_distance`
(DeepFool, then a binary search with PGD) keeping the example it found for
each image, plus the labels the model gives the clean and adversarial images.
:func:`breaking_at` picks, from that result, the images that break at a
budget: correct on the clean image, minimal eps at most the budget, smallest
first. Images the model already gets wrong are left out (they need no
budget at all); the selection counts them so a view can say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from explorer.core import accel
from explorer.core.analysis.distance import minimal_distance
from explorer.core.data.batching import batches
from explorer.core.device import device_of
from explorer.core.inference import logits_of
from explorer.core.jobs import CancelToken, Done, Event, Progress
from explorer.core.params import ParamError

GALLERY_NORMS = ("linf", "l2")  # the norms the minimal-eps search knows
ModelSource = nn.Module | Callable[[], nn.Module]


def min_eps_examples(
    model: ModelSource,
    dataset: Dataset,
    *,
    n: int | None = 200,
    norm: str = "linf",
    batch_size: int = 256,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
    **params: Any,
) -> Iterator[Event]:
    """Minimal eps and its adversarial image for each of the first ``n`` images.

    ``model`` is a module, or a function returning one (called here, in the
    job, and placed on ``device``). ``params``: the search's other settings
    (see ``DISTANCE_PARAMS``). Events: the search's ``Progress``. ``Done``:
    ``min_eps`` float64 (n,), 0 for an image the model gets wrong, ``inf``
    for one no budget inside the box breaks; ``x``, ``x_adv`` float32 images
    (``x_adv`` the example found at exactly ``min_eps``, ``x`` itself where
    there is none); ``y``, ``pred_clean``, ``pred_adv`` int64; ``correct``,
    ``broken`` bool; ``norm``, ``n``, ``cap``, ``median``, ``params``,
    ``seconds``.
    """
    token = token or CancelToken()
    if norm not in GALLERY_NORMS:
        raise ParamError(f"norm must be one of {', '.join(GALLERY_NORMS)}, "
                         f"got {norm!r} (the minimal eps is searched in these)")
    started = time.perf_counter()
    if not isinstance(model, nn.Module):
        model = model()
        if device is not None:
            model = accel.place(model, device)
    found: dict[str, Any] = {}
    for event in minimal_distance(model, dataset, n=n, batch_size=batch_size,
                                  seed=seed, device=device, token=token,
                                  keep_examples=True, norm=norm, **params):
        if isinstance(event, Progress):
            yield event
        elif isinstance(event, Done):
            found = event.results
    dev = device_of(model, device)
    xs, ys, pred_clean, pred_adv = [], [], [], []
    x_adv_all = found["x_adv"]
    start = 0
    for x, y in batches(dataset, batch_size, found["n"]):
        token.check()
        x_adv = torch.from_numpy(x_adv_all[start:start + len(x)])
        start += len(x)
        pred_clean.append(_labels(model, x, dev))
        pred_adv.append(_labels(model, x_adv, dev))
        xs.append(x.float().cpu().numpy())
        ys.append(torch.as_tensor(y).cpu().numpy())
    correct, broken = found["correct"], found["broken"]
    min_eps = np.where(correct, np.where(broken, found["distances"], np.inf), 0.0)
    yield Done({
        "min_eps": min_eps.astype(np.float64), "x": np.concatenate(xs),
        "x_adv": x_adv_all, "y": np.concatenate(ys).astype(np.int64),
        "pred_clean": np.concatenate(pred_clean),
        "pred_adv": np.concatenate(pred_adv), "correct": correct,
        "broken": broken, "norm": found["norm"], "n": found["n"],
        "cap": found["cap"], "median": found["median"], "params": found["params"],
        "seconds": time.perf_counter() - started,
    })  # fmt: skip


def _labels(model: nn.Module, x: torch.Tensor, device: torch.device) -> np.ndarray:
    out = logits_of(model, x.to(device, torch.float32)).argmax(1)
    return out.cpu().numpy().astype(np.int64)


@dataclass(frozen=True)
class Breaking:
    """The images that break at ``eps``: ``indices`` (into the result, the
    first ``limit`` by minimal eps, smallest first, ties by index) and the
    counts a header states."""

    eps: float
    indices: np.ndarray
    count: int  # all that break at eps, shown or not
    n: int  # images searched
    n_correct: int  # classified correctly on the clean image
    n_wrong: int  # already misclassified: never in the gallery
    n_unbroken: int  # correct and not broken by any budget inside the box


def breaking_at(result: dict[str, Any], eps: float,
                limit: int | None = None) -> Breaking:
    """From :func:`min_eps_examples`' result: the images correct on the clean
    image whose minimal eps is at most ``eps``, sorted by minimal eps."""
    if not eps >= 0:  # also NaN
        raise ParamError(f"eps must be a number ≥ 0, got {eps}")
    min_eps, correct = result["min_eps"], result["correct"]
    hit = np.flatnonzero(correct & (min_eps <= eps))
    order = hit[np.argsort(min_eps[hit], kind="stable")]
    if limit is not None:
        if limit < 0:
            raise ParamError(f"limit must be ≥ 0, got {limit}")
        order = order[:limit]
    return Breaking(
        eps=float(eps), indices=order, count=len(hit), n=len(min_eps),
        n_correct=int(correct.sum()), n_wrong=int((~correct).sum()),
        n_unbroken=int((correct & ~result["broken"]).sum()))
