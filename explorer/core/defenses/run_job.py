"""A whole training run as one job: load the data, build the model, train.

The Training page and ``explorer train`` both run :func:`train_run` with a
:class:`TrainingConfig`, and the workspace stores its ``to_json()``, so a
run started in one front end resumes in the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core import data, models
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses.config import TrainingConfig
from explorer.core.defenses.registry import create
from explorer.core.defenses.trainer import train
from explorer.core.inference import seeded
from explorer.core.jobs import CancelToken, Event, Progress, Snapshot

PLAN = "plan"  # label of the Snapshot that tells the GUI the run's size


def limited(dataset, limit: int | None):
    """The first ``limit`` items of a data set (all when None)."""
    if limit is None or limit >= len(dataset):
        return dataset
    if hasattr(dataset, "images"):
        return ArrayDataset(dataset.images[:limit], dataset.labels[:limit],
                            dataset.classes, dataset.info)
    x, y = dataset.as_tensors(0, limit)  # decoded on access (image folders)
    return ArrayDataset(x, y, dataset.classes, dataset.info)


def build_model(config: TrainingConfig, info) -> Any:
    """The untrained model, its initial weights drawn from ``config.seed``
    (the same seed gives the same run; the global generator is left as it was)."""
    with seeded(config.seed):
        return models.create(config.arch, in_shape=info.shape,
                             num_classes=info.num_classes, mean=info.mean,
                             std=info.std, classes=info.classes, dataset=info.name,
                             **config.arch_params)


def train_run(
    config: TrainingConfig,
    *,
    run_dir: str | Path,
    train_set=None,
    test_set=None,
    device=None,
    resume: bool = False,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Train as ``config`` says into ``run_dir``; events of :func:`train`.

    ``train_set``/``test_set`` save loading a split again when the caller
    has it (the CLI loads them first to name unreadable files). First yields
    a ``Snapshot`` labelled ``plan`` with the training set's size and the
    updates per epoch.
    """
    token = token or CancelToken()
    if train_set is None:
        yield Progress(0, 1, f"loading {config.data} (train)")
        train_set = data.load(config.data, "train", root=config.root)
    train_set = limited(train_set, config.limit_train)
    token.check()
    if test_set is None:
        test_set = data.load(config.data, "test", root=config.root)
    model = build_model(config, train_set.info)
    replays = create(config.defense, **config.params).replays
    per_epoch = math.ceil(len(train_set) / config.batch_size) * replays
    yield Snapshot(0, config.epochs, {"n_train": np.array(len(train_set)),
                                      "steps_per_epoch": np.array(per_epoch)},
                   PLAN)
    # yield from: a Cancelled the runner throws in at a suspension point
    # reaches the trainer, which saves last.pt where it stopped.
    yield from train(model, train_set, test_set, config, run_dir=run_dir,
                     device=device, resume=resume, token=token)
