"""One evaluation split over torchrun's processes: shards and merged results.

Each rank evaluates a contiguous shard of the first N images
(:meth:`explorer.core.distributed.World.shard`), with the images' global
indices as the attacks' ids, so every image gets the same random draws as in
one process (:mod:`explorer.core.attacks.draws`). The ranks' results, gathered
in rank order, merge here into the whole set's: an accuracy measured on a
shard is a count over its images, so the merged value is the summed count
over N, the very float one process computes; per-image lists join in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from explorer.core.analysis.distance import _histogram
from explorer.core.distributed import concat_ranked


class Shard(Dataset):
    """Images ``start..stop-1`` of ``dataset``, its classes and info kept."""

    def __init__(self, dataset: Any, span: range) -> None:
        self.dataset, self.start = dataset, span.start
        self.stop = min(span.stop, len(dataset))
        self.classes = list(getattr(dataset, "classes", ()))
        self.info = getattr(dataset, "info", None)
        if hasattr(dataset, "as_tensors"):
            self.as_tensors = self._as_tensors

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.dataset[self.start + i]

    def _as_tensors(self, start: int, stop: int):
        return self.dataset.as_tensors(self.start + start, self.start + stop)


def merge_share(values: Sequence[float], sizes: Sequence[int]) -> float:
    """The share over all images of shares measured on shards of ``sizes``
    images (NaN for no images)."""
    total = sum(sizes)
    if not total:
        return float("nan")
    count = sum(round(v * n) for v, n in zip(values, sizes, strict=True) if n)
    return count / total


def merge_clean(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`explorer.core.analysis.accuracy.clean_accuracy` results of the
    shards, as the whole set's (confusion matrices summed)."""
    k = max(len(p["confusion"]) for p in parts)
    confusion = np.zeros((k, k), dtype=np.int64)
    for p in parts:
        c = np.asarray(p["confusion"], dtype=np.int64)
        if c.size:
            confusion[:c.shape[0], :c.shape[1]] += c
    n = int(confusion.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / confusion.sum(1)
    return {**parts[0], "clean_acc": float(np.trace(confusion) / n) if n
            else float("nan"), "per_class_acc": [float(a) for a in per_class],
            "confusion": confusion.tolist(), "n": n,
            "seconds": max(p["seconds"] for p in parts)}


_SHARES = ("clean_acc", "robust_acc", "union_acc")
_SHARE_MAPS = ("per_attack", "per_threat", "per_budget")


def merge_suite(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`explorer.core.analysis.cascade.run_suite` results of the shards
    (``robust`` per image, ``n``), as the whole set's."""
    sizes = [p["n"] for p in parts]
    out = dict(parts[0])
    out["n"] = sum(sizes)
    for key in _SHARES:
        if key in out:
            out[key] = merge_share([p[key] for p in parts], sizes)
    for key in _SHARE_MAPS:
        if key in out:
            out[key] = {k: merge_share([p[key][k] for p in parts], sizes)
                        for k in out[key]}
    if "avg_acc" in out:  # as run_suite: the mean over the threat models
        out["avg_acc"] = sum(out["per_threat"].values()) / len(out["per_threat"])
    out["attacked"] = {k: sum(p["attacked"][k] for p in parts)
                       for k in out["attacked"]}
    out["seconds"] = {k: max(p["seconds"][k] for p in parts) for k in out["seconds"]}
    out["total_seconds"] = max(p["total_seconds"] for p in parts)
    out["robust"] = concat_ranked([p["robust"] for p in parts])
    return out


def merge_curve(parts: Sequence[Sequence[float]], sizes: Sequence[int]
                ) -> list[float]:
    """Accuracy-vs-eps points measured on shards, as the whole set's."""
    return [merge_share(values, sizes) for values in zip(*parts, strict=True)]


def merge_min_eps(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`explorer.core.analysis.distance.minimal_distance` results of the
    shards (arrays per image), as the whole set's: the median and the
    counts are recomputed from the joined arrays as that job does."""
    out = dict(parts[0])
    for key in ("distances", "lower", "deepfool", "broken", "correct"):
        out[key] = np.concatenate([p[key] for p in parts])
    dist, broken, correct = out["distances"], out["broken"], out["correct"]
    shown = dist[broken & correct].astype(np.float64)
    out["median"] = float(np.median(shown)) if len(shown) else math.nan
    out["hist_edges"], out["hist_counts"] = _histogram(
        shown, out["params"]["bins"], out["cap"])
    out.update(n=len(dist), n_correct=int(correct.sum()),
               n_unbroken=int((correct & ~broken).sum()),
               seconds=max(p["seconds"] for p in parts))
    return out
