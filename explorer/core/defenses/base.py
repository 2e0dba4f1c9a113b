"""The defense base class: a training objective with declared parameters.

A defense turns a clean batch into the loss the optimizer minimises. It gets
the model in train mode and must leave it so; any attack it runs freezes the
model (eval mode, no parameter gradients) and restores it afterwards, so batch
norm statistics come from the update pass only (Madry et al.'s practice).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from explorer.core.params import Param, ParamError, validate


class Defense(ABC):
    """Subclasses set ``name``, ``title``, ``params``, ``description`` and
    write :meth:`loss`; parameter validation lives here."""

    name: ClassVar[str]
    title: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    description: ClassVar[str] = ""
    # The validation figure (``val_`` + this key) that chooses the best epoch:
    # the trainer's l-inf PGD accuracy, or a key of :meth:`extra_scores`.
    selection_key: ClassVar[str] = "robust_acc"
    # How the trainer keeps the ranks' copies of the model equal under
    # torchrun (explorer.core.distributed.Replicas): "ddp" when the loss's
    # training passes are model(x) and one backward; "ddp-unused" when a step
    # may leave some weights without a gradient; "average" when the loss
    # calls other methods of the model or takes weight gradients with
    # torch.autograd.grad (the trainer then averages the gradients itself);
    # any other text is why the method cannot train on several processes.
    sync: ClassVar[str] = "ddp"
    # The attack that crafts the training examples, for the overfitting
    # alarms that fit a run (explorer.core.defenses.alarm_scope): None when
    # the method trains on no adversarial examples, a number of steps, or the
    # name of the parameter that holds them (PGD-AT's "steps": 1 makes it a
    # single-step method).
    attack_steps: ClassVar[int | str | None] = None

    @classmethod
    def training_attack_steps(cls, params: Mapping[str, Any]) -> int | None:
        """Steps per update of the attack behind the training examples with
        ``params`` (a run's parameters; missing ones take their defaults),
        or None: clean (or only randomly perturbed) training images."""
        steps = cls.attack_steps
        return int(cls.param_value(params, steps)) if isinstance(steps, str) else steps

    @classmethod
    def param_value(cls, params: Mapping[str, Any], name: str) -> Any:
        """``params[name]``, else the declared default of parameter ``name``."""
        if name in params:
            return params[name]
        return next(p.default for p in cls.params if p.name == name)

    def __init__(self, **values: Any) -> None:
        self.cfg = validate(self.params, values)
        self._check()

    def _check(self) -> None:
        for key in ("eps", "alpha"):
            if key in self.cfg and self.cfg[key] > 1:
                raise ParamError(f"{key} must be in [0, 1], got {self.cfg[key]:g}")

    @abstractmethod
    def loss(
        self, model: nn.Module, x: Tensor, y: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """(mean loss with a graph to the weights, logits for train accuracy)."""

    @property
    def replays(self) -> int:
        """Updates per batch (Free-AT replays each minibatch m times)."""
        return 1

    def prepare(self, model: nn.Module) -> nn.Module | None:  # noqa: B027
        """Called once by the trainer before training (and before a resume
        loads weights): a method may transform the model in place here, or
        return a new module to train instead (ADP's ensemble)."""

    def end_epoch(self, metrics: dict[str, float]) -> None:  # noqa: B027
        """Called by the trainer after each epoch's evaluation with that
        epoch's metrics but the test figures (``val_robust_acc`` ...), before
        the checkpoint."""

    def extra_scores(
        self, model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int,
        device: torch.device, token: Any,
    ) -> dict[str, float]:
        """Figures beyond clean and l-inf PGD accuracy, measured after each
        epoch on ``x, y`` (the validation images, then the test images). The
        trainer reports each ``key`` as ``val_key`` / ``test_key``; the
        Training page draws them in its method plot. ``eps`` and ``steps``
        are the run's evaluation settings; call ``token.check()`` between
        batches so a stop is prompt."""
        return {}

    def after_backward(self) -> None:  # noqa: B027 - optional hook
        """Called after ``loss.backward()``, before the optimizer step (Free-AT
        reads the input gradient of the same backward pass here)."""

    def state_dict(self) -> dict[str, Any]:
        """Method state kept across batches (tensors and plain values only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.cfg.items())
        return f"{type(self).__name__}({args})"
