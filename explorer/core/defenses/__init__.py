"""Defenses: training objectives on one base class, and the trainer job.

``create(name, **params)``, ``names()``, ``spec(name)``; ``train(model,
train_set, test_set, TrainingConfig(...), run_dir=...)`` is the job that runs
any of them (:mod:`explorer.core.defenses.trainer`); ``train_run(config, ...)``
a whole run from data to checkpoints (:mod:`explorer.core.defenses.run_job`).
"""

from explorer.core.defenses.base import Defense
from explorer.core.defenses.config import TrainingConfig
from explorer.core.defenses.mixup_inference import (
    INFERENCE_WRAPPERS,
    inference_wrappers,
    wrap,
    wrapper_spec,
)
from explorer.core.defenses.registry import (
    REGISTRY,
    adversarial_names,
    create,
    create_wrapped,
    defense_class,
    names,
    spec,
)
from explorer.core.defenses.trainer import TrainingDiverged, train

__all__ = [
    "INFERENCE_WRAPPERS",
    "REGISTRY",
    "Defense",
    "TrainingConfig",
    "TrainingDiverged",
    "adversarial_names",
    "create",
    "create_wrapped",
    "defense_class",
    "inference_wrappers",
    "names",
    "spec",
    "train",
    "wrap",
    "wrapper_spec",
]  # fmt: skip
