"""Clean accuracy with per-class accuracy and a confusion matrix, as a job."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from explorer.core.data.batching import batches, num_batches
from explorer.core.jobs import (
    CancelToken,
    Done,
    Event,
    Metric,
    Progress,
    ProgressThrottle,
)


@torch.inference_mode()
def clean_accuracy(
    model: nn.Module,
    dataset: Dataset,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 500,
    limit: int | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Evaluate ``model`` on ``dataset``; the final ``Done`` holds

    ``clean_acc``, ``per_class_acc`` (list, NaN for absent classes),
    ``confusion`` (rows = true class, columns = predicted), ``n``, ``seconds``.
    """
    token = token or CancelToken()
    classes = tuple(getattr(dataset, "classes", ()))
    was_training = model.training
    model.eval()
    device = torch.device(device)
    started = time.perf_counter()
    total = num_batches(dataset, batch_size, limit)
    throttle = ProgressThrottle(0.02)
    confusion: np.ndarray | None = None
    try:
        for i, (x, y) in enumerate(batches(dataset, batch_size, limit)):
            token.check()
            pred = model(x.to(device)).argmax(1).cpu().numpy()
            true = y.numpy().astype(np.int64)
            k = max(len(classes), int(pred.max()) + 1, int(true.max()) + 1)
            if confusion is None or confusion.shape[0] < k:
                grown = np.zeros((k, k), dtype=np.int64)
                if confusion is not None:
                    grown[: confusion.shape[0], : confusion.shape[1]] = confusion
                confusion = grown
            np.add.at(confusion, (true, pred), 1)
            if throttle.due(i + 1, total):
                yield Progress(i + 1, total, "clean accuracy")
    finally:
        model.train(was_training)
    if confusion is None:
        confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    n = int(confusion.sum())
    support = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / support
    clean_acc = float(np.trace(confusion) / n) if n else float("nan")
    yield Metric("clean_acc", clean_acc)
    yield Done(
        {
            "clean_acc": clean_acc,
            "per_class_acc": [float(a) for a in per_class],
            "confusion": confusion.tolist(),
            "classes": list(classes),
            "n": n,
            "seconds": time.perf_counter() - started,
        }
    )
