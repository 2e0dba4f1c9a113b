"""What the scripts that train the built-in models share: the official
Fashion-MNIST training images (on Debian: `apt install dataset-fashion-mnist`)
and the trainer run that prints its epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.core import data, defenses
from explorer.core.data.base import ArrayDataset
from explorer.core.data.idx import read_idx
from explorer.core.jobs import Done, Log, Metric


def official_train(idx_dir: Path) -> ArrayDataset:
    """The 60k official training images from ``idx_dir``'s IDX files."""
    images = read_idx(idx_dir / "train-images-idx3-ubyte.gz")[:, None]
    labels = read_idx(idx_dir / "train-labels-idx1-ubyte.gz").astype(np.int64)
    info = data.info("fashion-mnist")
    return ArrayDataset(images, labels, info.classes, info)


def train_printing(model, train_set, test_set, config, run_dir: Path) -> dict:
    """``defenses.train`` on the CPU, printing each epoch figure and log line;
    returns the trainer's results."""
    result: dict = {}
    for event in defenses.train(model, train_set, test_set, config, run_dir=run_dir,
                                device="cpu"):
        if isinstance(event, Metric) and event.name != "batch_loss":
            print(f"epoch {event.step}: {event.name} = {event.value:.4f}", flush=True)
        elif isinstance(event, Log):
            print(event.message, flush=True)
        elif isinstance(event, Done):
            result = event.results
    return result
