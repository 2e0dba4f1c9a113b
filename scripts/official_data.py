"""The official Fashion-MNIST training images, for the scripts that train the
built-in models (on Debian: `apt install dataset-fashion-mnist`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.core import data
from explorer.core.data.base import ArrayDataset
from explorer.core.data.idx import read_idx


def official_train(idx_dir: Path) -> ArrayDataset:
    """The 60k official training images from ``idx_dir``'s IDX files."""
    images = read_idx(idx_dir / "train-images-idx3-ubyte.gz")[:, None]
    labels = read_idx(idx_dir / "train-labels-idx1-ubyte.gz").astype(np.int64)
    info = data.info("fashion-mnist")
    return ArrayDataset(images, labels, info.classes, info)
