"""Whole batches of a data set, in order: in-memory sets are sliced directly."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from explorer.core.params import ParamError


def check_batching(n: int | None, batch_size: int) -> None:
    """A job's ``n`` (first N items; None = all) and ``batch_size``."""
    if n is not None and n < 1:
        raise ParamError(f"n must be at least 1, got {n}")
    if batch_size < 1:
        raise ParamError(f"batch_size must be at least 1, got {batch_size}")


def batches(
    dataset: Dataset, batch_size: int, limit: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches of the first ``limit`` items, in order.

    In-memory sets (with ``as_tensors``) are sliced directly; others go
    through a single-process DataLoader.
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    as_tensors = getattr(dataset, "as_tensors", None)
    if as_tensors is not None:
        for start in range(0, n, batch_size):
            yield as_tensors(start, min(start + batch_size, n))
        return
    subset = torch.utils.data.Subset(dataset, range(n)) if n < len(dataset) else dataset
    for x, y in DataLoader(subset, batch_size=batch_size, shuffle=False):
        yield x, torch.as_tensor(y)


def num_batches(dataset: Dataset, batch_size: int, limit: int | None = None) -> int:
    n = len(dataset) if limit is None else min(limit, len(dataset))
    return (n + batch_size - 1) // batch_size
