"""Clean accuracy against robust accuracy, with what each model cost to train.

The Evaluate page's trade-off view puts the compared models on one scatter
(clean accuracy x, robust accuracy y; seed 002's accuracy-versus-robustness
frontier) and labels each with its training time, as multi-perturbation
papers report time beside robustness (seed 001). This module holds the plain
parts: where a training time is recorded, how it reads, and which models
are on the Pareto frontier.

A training time is only ever read, never estimated: from the model's
metadata (``meta.training``: ``train_seconds`` as the built-in scripts
write it, or ``seconds``), else from the workspace's training-run record
(its summary's ``seconds``, which the GUI and ``explorer train`` both
store); a model with neither has an unknown time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from explorer.core.analysis.compare import ModelSource, load_for_data
from explorer.core.jobs import CancelToken, Done, Event, Progress

SECONDS_KEYS = ("train_seconds", "training_seconds", "seconds")
UNKNOWN = "unknown"


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def training_seconds(training: Mapping[str, Any] | None) -> float | None:
    """The training time a ``meta.training`` dict or a run summary records,
    in seconds; None when it records none."""
    for key in SECONDS_KEYS:
        found = _seconds((training or {}).get(key))
        if found is not None:
            return found
    return None


def time_text(seconds: float | None) -> str:
    """``"45 s"``, ``"5.5 min"``, ``"2.3 h"``, or ``"unknown"``."""
    if seconds is None:
        return UNKNOWN
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (at least as
    high on both, higher on one), by ascending x; ties all kept."""
    front = [i for i, (x, y) in enumerate(points)
             if not any(ox >= x and oy >= y and (ox > x or oy > y)
                        for ox, oy in points)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def training_times_job(models: Mapping[str, ModelSource],
                       known: Mapping[str, float | None] | None = None, *,
                       token: CancelToken | None = None) -> Iterator[Event]:
    """Each model's recorded training time: its metadata's, else ``known``
    (e.g. a training run's record). Loaders are called here, in the job.
    ``Done``: ``seconds`` {name: seconds or None}, ``source`` {name:
    "metadata", "run record" or None}."""
    token = token or CancelToken()
    known = dict(known or {})
    seconds: dict[str, float | None] = {}
    source: dict[str, str | None] = {}
    for i, (name, model_source) in enumerate(models.items()):
        token.check()
        model = load_for_data(name, model_source, None, None)
        meta = getattr(model, "meta", None)
        found = training_seconds(getattr(meta, "training", None))
        source[name] = "metadata" if found is not None else None
        if found is None and _seconds(known.get(name)) is not None:
            found, source[name] = _seconds(known[name]), "run record"
        seconds[name] = found
        yield Progress(i + 1, len(models), f"training time of {name}")
    yield Done({"seconds": seconds, "source": source})
