"""A whole training run as one job: load the data, build the model, train.

``config`` has the keys the CLI records for a ``train`` run (data, root,
arch, arch_params, defense, params, epochs, ...), so a run started in the
GUI resumes from the CLI and the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core import data, models
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses.registry import create
from explorer.core.defenses.trainer import train
from explorer.core.jobs import CancelToken, Event, Progress, Snapshot

PLAN = "plan"  # label of the Snapshot that tells the GUI the run's size


def limited(dataset, limit: int | None):
    """The first ``limit`` items of an in-memory data set (all when None)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return ArrayDataset(dataset.images[:limit], dataset.labels[:limit],
                        dataset.classes, dataset.info)


def build_model(config: dict[str, Any], info) -> Any:
    return models.create(config["arch"], in_shape=info.shape,
                         num_classes=info.num_classes, mean=info.mean,
                         std=info.std, classes=info.classes, dataset=info.name,
                         **config["arch_params"])


def train_run(
    config: dict[str, Any],
    *,
    run_dir: str | Path,
    test_set=None,
    device=None,
    resume: bool = False,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Train as ``config`` says into ``run_dir``; events of :func:`train`.

    ``test_set`` saves loading the test split again when the caller has it.
    First yields a ``Snapshot`` labelled ``plan`` with the training set's
    size and the updates per epoch.
    """
    token = token or CancelToken()
    yield Progress(0, 1, f"loading {config['data']} (train)")
    train_set = limited(data.load(config["data"], "train", root=config["root"]),
                        config.get("limit_train"))
    token.check()
    if test_set is None:
        test_set = data.load(config["data"], "test", root=config["root"])
    model = build_model(config, train_set.info)
    replays = create(config["defense"], **config["params"]).replays
    per_epoch = math.ceil(len(train_set) / config["batch_size"]) * replays
    yield Snapshot(0, config["epochs"], {"n_train": np.array(len(train_set)),
                                         "steps_per_epoch": np.array(per_epoch)},
                   PLAN)
    # yield from: a Cancelled the runner throws in at a suspension point
    # reaches the trainer, which saves last.pt where it stopped.
    yield from train(
        model, train_set, test_set, method=config["defense"],
        params=config["params"], epochs=config["epochs"], run_dir=run_dir,
        batch_size=config["batch_size"], optimizer=config["optimizer"],
        lr=config["lr"], schedule=config["schedule"], seed=config["seed"],
        eval_eps=config["eval_eps"], eval_steps=config["eval_steps"],
        eval_n=config["eval_n"], device=device,
        checkpoint_minutes=config["checkpoint_minutes"], resume=resume,
        token=token)
