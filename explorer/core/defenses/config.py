"""A training run's whole configuration, frozen: what to train, how, how to score it.

The GUI's Training page and ``explorer train`` build one, the trainer and
the whole-run job read it, and ``to_json()`` is what the workspace stores
for the run (so a run started in one front end resumes in the other, and
``from_json`` reads the runs stored before this class existed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from explorer.core.params import ParamError
from explorer.core.training.augment import AUGMENT
from explorer.core.training.augment import resolve as resolve_augment
from explorer.core.training.fine_tune import check_freeze
from explorer.core.training.precision import check_amp
from explorer.core.training.schedules import OPTIMIZERS, SCHEDULES
from explorer.core.training.split import (
    VAL_FRACTION,
    VAL_MAX,
    check_fraction,
    selected_on,
)


@dataclass(frozen=True)
class TrainingConfig:
    """What a training run does.

    ``init_from`` starts the run from a loaded model instead of fresh weights
    (fine-tuning): a built-in model name (``models.builtin_names()``) or a
    model file ``models.load`` reads (safetensors, a ``.pt2`` torch.export
    program, ONNX, TorchScript, or a weights-only ``.pt``/``.pth`` whose
    architecture ``init_arch`` names). ``arch`` and ``arch_params`` are then
    ignored: the loaded model brings its own, and the front ends record its
    ``arch`` there. Runs stored before these fields existed read as None: a
    fresh start. ``freeze`` chooses what such a run trains
    (:mod:`explorer.core.training.fine_tune`): ``"none"`` every weight (full
    fine-tuning), ``"features"`` the classifier head only (linear probing);
    ``new_head`` re-initialises the head from ``seed`` first. Runs stored
    before them read as ``"none"`` and False.
    """

    # how to train
    defense: str = "standard"
    params: Mapping[str, Any] = field(default_factory=dict)  # the defense's
    # NoiLIn around the defense (an adversarial one): None, or the wrapper's
    # rate, growth, rate_max ({} = its defaults). Older runs read as None.
    noilin: Mapping[str, Any] | None = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None  # None: 0.1 for SGD, 1e-3 for Adam
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "piecewise"
    seed: int = 0
    # crop and/or flip the training images (explorer.core.training.augment):
    # "auto" is crop-flip for 3×32×32 sets, none otherwise; the front ends
    # record the resolved mode. Runs stored without it trained with none.
    augment: str = "auto"
    # how each epoch is scored: clean and PGD at eval_eps accuracy on the first
    # eval_n validation images (what chooses the best epoch, raises the alarms
    # and drives NoiLIn) and on the first eval_n test images (reported only)
    eval_eps: float = 0.1
    eval_steps: int = 10
    eval_n: int = 500
    checkpoint_minutes: float = 5.0
    # the validation split (explorer.core.training.split): this share of the
    # training images, at most val_max, is held out; 0 holds out none and the
    # last epoch is kept as the best. Runs stored without it had no split.
    val_fraction: float = VAL_FRACTION
    val_max: int = VAL_MAX
    # what to train (read by the whole-run job, explorer.core.defenses.run_job)
    data: str = "fashion-mnist-mini"
    root: str | None = None
    arch: str = "small-cnn"
    arch_params: Mapping[str, Any] = field(default_factory=dict)
    limit_train: int | None = None
    # where the weights start: fresh (None) or a loaded model (see the class doc)
    init_from: str | None = None
    init_arch: str | None = None
    freeze: str = "none"
    new_head: bool = False
    # speed (explorer.core.training.precision): mixed precision of the
    # defense's forward passes ("off", "bf16", "fp16" with a grad scaler, CUDA
    # only) and torch.compile of the model. Not fixed for a resume; runs
    # stored without them read as off and False.
    amp: str = "off"
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_steps", "eval_n", "val_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ParamError(f"{name} must be a whole number of at least 1, "
                                 f"got {value!r}")
        if self.limit_train is not None and self.limit_train < 1:
            raise ParamError(f"limit_train must be at least 1, got {self.limit_train}")
        if self.optimizer not in OPTIMIZERS:
            raise ParamError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ParamError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {self.schedule!r}")
        for name in ("init_from", "init_arch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ParamError(f"{name} must be a non-empty name or path, got "
                                 f"{value!r}")
        if self.init_arch is not None and self.init_from is None:
            raise ParamError("init_arch names the architecture of a weights-only "
                             "init_from file; give init_from too")
        check_freeze(self.freeze)
        if not isinstance(self.new_head, bool):
            raise ParamError(f"new_head must be true or false, got {self.new_head!r}")
        if self.init_from is None and (self.freeze != "none" or self.new_head):
            what = "freeze features" if self.freeze != "none" else "new_head"
            raise ParamError(f"{what} is for fine-tuning a loaded model; give "
                             f"init_from too")
        check_amp(self.amp)  # "amp must be one of off, bf16, fp16, got ..."
        if not isinstance(self.compile, bool):
            raise ParamError(f"compile must be true or false, got {self.compile!r}")
        AUGMENT.validate(self.augment)  # "augment must be one of auto, ..."
        if self.lr is not None and not self.lr > 0:
            raise ParamError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.eval_eps <= 1:
            raise ParamError(f"eval_eps must be in [0, 1], got {self.eval_eps}")
        object.__setattr__(self, "val_fraction", check_fraction(self.val_fraction))
        if not self.checkpoint_minutes >= 0:
            raise ParamError("checkpoint_minutes must be at least 0, got "
                             f"{self.checkpoint_minutes}")
        # frozen, but the mappings are the caller's: keep private copies
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "arch_params", dict(self.arch_params))
        if self.noilin is not None:
            object.__setattr__(self, "noilin", dict(self.noilin))

    @property
    def selected_on(self) -> str:
        """What chooses the best epoch: ``"validation"``, or ``"last"`` when
        no validation split is held out."""
        return selected_on(int(self.val_fraction > 0))

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 0.1 if self.optimizer == "sgd" else 1e-3

    def resolved(self, shape: tuple[int, ...]) -> TrainingConfig:
        """This config with ``augment="auto"`` made concrete for training
        images of ``shape`` (C, H, W): what a run records when it starts."""
        return self.replace(augment=resolve_augment(self.augment, shape))

    def replace(self, **changes: Any) -> TrainingConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain values: what the workspace stores as the run's config, with
        ``selected_on`` (derived: ``from_json`` ignores it)."""
        out = dataclasses.asdict(self)
        out["params"], out["arch_params"] = dict(self.params), dict(self.arch_params)
        out["noilin"] = None if self.noilin is None else dict(self.noilin)
        out["selected_on"] = self.selected_on
        return out

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> TrainingConfig:
        """A stored run config; keys this version does not know are ignored,
        missing ones (older runs) take their defaults, except ``augment`` and
        ``val_fraction``: runs stored before they existed trained, and
        resume, without augmentation and on all their training images."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in stored.items() if k in names}
        known.setdefault("augment", "none")
        known.setdefault("val_fraction", 0.0)
        return cls(**known)
