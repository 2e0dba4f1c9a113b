"""A whole training run as one job: load the data, build the model, train.

The Training page and ``explorer train`` both run :func:`train_run` with a
:class:`TrainingConfig`, and the workspace stores its ``to_json()``, so a
run started in one front end resumes in the other. With
``config.init_from`` the model is loaded (:func:`load_init`) instead of
created: fine-tuning, resumed like any run (the model is loaded again, then
``last.pt`` overwrites its weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core import data, distributed, models
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses.config import TrainingConfig
from explorer.core.defenses.registry import create_wrapped
from explorer.core.defenses.trainer import train
from explorer.core.inference import seeded
from explorer.core.jobs import CancelToken, Event, Log, Progress, Snapshot
from explorer.core.models import robustbench_zoo
from explorer.core.models.code import ARCH_PREFIX as CODE_PREFIX
from explorer.core.training.split import validation_size

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


def run_title(config: TrainingConfig) -> str:
    """How the workspace lists the run: "pgd-at small-cnn on cifar10", with
    "from NAME" when it fine-tunes a loaded model ("linear probe from NAME"
    when only its head trains)."""
    noilin = " + NoiLIn" if config.noilin is not None else ""
    title = f"{config.defense}{noilin} {config.arch} on {config.data}"
    if config.init_from is not None:
        probe = " linear probe" if config.freeze == "features" else ""
        title += f"{probe} from {Path(config.init_from).name}"
    return title


def load_init(config: TrainingConfig, info=None) -> Any:
    """The model ``config.init_from`` names, on the CPU in train mode; with
    ``info`` (a data set's), a ModelError unless it takes that set's images
    and has one output per class (the message names the file and both)."""
    source = str(config.init_from)
    if source in models.builtin_names():
        if config.init_arch is not None:
            raise models.ModelError(f"{source} is a built-in model with its own "
                                    f"architecture; init_arch is for weights-only "
                                    f"files")
        model = models.load_builtin(source)
    elif not Path(source).exists():
        raise models.ModelError(
            f"{source}: no such model file, and not a built-in model "
            f"({', '.join(models.builtin_names()) or 'none installed'})")
    else:
        model = models.load(source, arch=config.init_arch)
    if info is not None:
        models.check_compatible(model, info)
    return model.cpu().train()


def init_source(model) -> tuple[str, str | None]:
    """``(init_from, init_arch)`` that load ``model`` again for fine-tuning:
    its built-in name or file, and the architecture a weights-only file
    needs. A ModelError says why a model cannot be (nothing to read it
    from, model code, RobustBench, a wrapper)."""
    meta = getattr(model, "meta", None)
    if getattr(model, "wrapper", None) is not None:
        raise models.ModelError("the model is wrapped; training starts from the "
                                "model file itself (unwrap it to fine-tune it)")
    if meta is None or not meta.source:
        raise models.ModelError("the model was not loaded from a file or a "
                                "built-in name, so training cannot read it again")
    if meta.arch.startswith(CODE_PREFIX):
        raise models.ModelError("a network built by model code cannot be "
                                "fine-tuned here (the trainer reads model files "
                                "without running code)")
    if robustbench_zoo.is_robustbench(meta.source):
        raise models.ModelError("a RobustBench model cannot be fine-tuned here "
                                "(its checkpoint is read through RobustBench)")
    if meta.source in models.builtin_names():
        return meta.source, None
    weights_only = meta.format in ("safetensors", "state_dict")
    return meta.source, meta.arch if weights_only else None


def build_model(config: TrainingConfig, info) -> Any:
    """The model to train: the one ``config.init_from`` names, checked
    against ``info`` (:func:`load_init`), or an untrained ``config.arch``
    whose initial weights are drawn from ``config.seed`` (the same seed gives
    the same run; the global generator is left as it was)."""
    if config.init_from is not None:
        return load_init(config, info)
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
    world: distributed.World = distributed.SINGLE,
) -> Iterator[Event]:
    """Train as ``config`` says into ``run_dir``; events of :func:`train`.

    ``train_set``/``test_set`` save loading a split again when the caller
    has it (the CLI loads them first to name unreadable files). First yields
    a ``Snapshot`` labelled ``plan`` with the number of images trained on
    (``n_train``), held out for validation (``val_n``) and the updates per
    epoch; a ``val_fraction`` that leaves nothing to train on is a
    ParamError before the model is built. ``world``: this process's place
    among several (torchrun; see the trainer's module doc).
    """
    token = token or CancelToken()
    if train_set is None:
        yield Progress(0, 1, f"loading {config.data} (train)")
        train_set = data.load(config.data, "train", root=config.root)
    train_set = limited(train_set, config.limit_train)
    val_n = validation_size(len(train_set), config.val_fraction, config.val_max)
    token.check()
    if test_set is None:
        test_set = data.load(config.data, "test", root=config.root)
    model = build_model(config, train_set.info)
    if config.init_from is not None:
        meta = model.meta
        yield Log(f"starting from {config.init_from} ({meta.arch}, "
                  f"{meta.format}) instead of fresh weights")
    replays = create_wrapped(config.defense, config.params,
                             config.noilin).replays
    n_train = len(train_set) - val_n
    per_epoch = math.ceil(n_train / config.batch_size) * replays
    yield Snapshot(0, config.epochs, {"n_train": np.array(n_train),
                                      "val_n": np.array(val_n),
                                      "steps_per_epoch": np.array(per_epoch)},
                   PLAN)
    # yield from: a Cancelled the runner throws in at a suspension point
    # reaches the trainer, which saves last.pt where it stopped.
    yield from train(model, train_set, test_set, config, run_dir=run_dir,
                     device=device, resume=resume, token=token, world=world)
