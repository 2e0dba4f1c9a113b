"""The attack base class: torchattacks' template method with guards.

An attack is created with a model and validated parameters. ``run(x, y)`` is
a generator of :class:`AttackStep` (the live view); ``atk(x, y)`` is the fast
path through the same code. Every attack runs with the model frozen (eval
mode, no parameter gradients; both restored in ``finally``), keeps ``x_adv``
in [0, 1] and inside its declared budget, and is reproducible with ``seed``.
"""

from __future__ import annotations

import collections
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from explorer.core import accel
from explorer.core.attacks import draws
from explorer.core.inference import make_generator, model_frozen
from explorer.core.params import Param, ParamError, validate

TARGET_MODES = ("none", "random", "least-likely", "class")

TARGET_PARAMS = (
    Param("targeted", str, "none", "untargeted, or how to pick the target class",
          choices=TARGET_MODES),
    Param("target_class", int, 0, "the target when targeted = class", minimum=0),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AttackStep:
    """One iterate of an attack, on the attack's device.

    ``loss`` is the per-sample objective the attack maximises (higher is
    closer to success); ``logits`` are the model's outputs at ``x_adv``.
    On the fast path the last step may carry ``logits``/``loss``/``success``
    of ``None`` when nothing needed them.
    """

    step: int
    total: int
    x_adv: Tensor
    logits: Tensor | None
    loss: Tensor | None
    success: Tensor | None
    target: Tensor | None


def attack_loss(logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
    """Per-sample objective: CE to the true class, or minus CE to the target."""
    if target is None:
        return nn.functional.cross_entropy(logits, y, reduction="none")
    return -nn.functional.cross_entropy(logits, target, reduction="none")


def is_success(logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
    pred = logits.argmax(1)
    return pred != y if target is None else pred == target


class Attack(ABC):
    """Base class. Subclasses set ``name``, ``title``, ``params`` and write
    ``_steps``; everything else (validation, targets, mode, seed) is here."""

    name: ClassVar[str]
    title: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    kind: ClassVar[str] = "white-box"  # "white-box" | "black-box" | "corruption"
    targeted_ok: ClassVar[bool] = True
    description: ClassVar[str] = ""

    def __init__(self, model: nn.Module, *, seed: int | None = 0,
                 amp: bool | None = None, **values: Any):
        """``amp``: forward passes in mixed precision (:mod:`explorer.core.accel`;
        ``None`` reads ``EXPLORER_AMP``). Losses and steps stay float32."""
        self.amp = accel.amp_default() if amp is None else bool(amp)
        self.model = accel.Autocast(model) if self.amp else model
        self.seed = seed
        if not self.targeted_ok and values.get("targeted", "none") != "none":
            raise ParamError(f"{self.name} cannot be targeted; use targeted=none")
        self.cfg = validate(self.all_params(), values)
        self._check()

    @classmethod
    def all_params(cls) -> tuple[Param, ...]:
        return cls.params + (TARGET_PARAMS if cls.targeted_ok else ())

    def _check(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Cross-parameter checks of a subclass (raise ParamError)."""

    def budget(self) -> tuple[str, float] | None:
        """(norm, eps) the result is guaranteed to respect; None if unbounded."""
        return None

    # -- running --------------------------------------------------------------
    def run(
        self, x: Tensor, y: Tensor, target: Tensor | None = None
    ) -> Iterator[AttackStep]:
        """Per-step iterates for the live view. Wrap in ``contextlib.closing``
        when stopping early, so the model's mode is restored at once."""
        return self._run(x, y, target, live=True)

    def __call__(self, x: Tensor, y: Tensor, target: Tensor | None = None, *,
                 ids: Tensor | None = None) -> Tensor:
        return self.result(x, y, target, ids=ids).x_adv

    def result(
        self, x: Tensor, y: Tensor, target: Tensor | None = None, *,
        ids: Tensor | None = None,
    ) -> AttackStep:
        """The fast path's final step: ``x_adv`` and the target it used (a
        ``random`` mode draws one); logits may be ``None`` (see AttackStep).

        ``ids``: the images' global indices (one int each). With them every
        random draw is the image's own (:mod:`explorer.core.attacks.draws`),
        so the result does not depend on how the images were batched;
        without them one generator seeded per call draws for the batch."""
        (last,) = collections.deque(self._run(x, y, target, live=False, ids=ids),
                                    maxlen=1)
        return last

    def _run(self, x, y, target, live: bool,
             ids: Tensor | None = None) -> Iterator[AttackStep]:
        x = x.detach()
        y = y.to(x.device)
        if ids is None:
            generator: draws.Draws = make_generator(self.seed, x.device)
        else:
            if len(ids) != len(x):
                raise ValueError(f"ids must give one index per image: {len(ids)} "
                                 f"for {len(x)} images")
            generator = draws.ImageDraws(self.seed, ids, x.device)
        with model_frozen(self.model):
            target = self._resolve_target(x, y, target, generator)
            yield from self._steps(x, y, target, generator, live)

    def _resolve_target(self, x, y, target, generator) -> Tensor | None:
        if target is not None:
            return target.to(x.device)
        mode = self.cfg.get("targeted", "none")
        if mode == "none":
            return None
        with torch.no_grad():
            logits = self.model(x)
        k = logits.shape[1]
        if mode == "class":
            cls = self.cfg["target_class"]
            if cls >= k:
                raise ParamError(f"target_class must be in [0, {k - 1}], got {cls}")
            return torch.full_like(y, cls)
        if mode == "least-likely":
            return logits.argmin(1)
        # random: uniform over the classes other than the true one
        offset = draws.randint(1, k, y.shape, generator, device=x.device)
        return (y + offset) % k

    @abstractmethod
    def _steps(
        self,
        x: Tensor,
        y: Tensor,
        target: Tensor | None,
        generator: draws.Draws,
        live: bool,
    ) -> Iterator[AttackStep]:
        """Yield iterates; the last one is the result."""

    # -- helpers for subclasses ----------------------------------------------
    def evaluate(self, x_adv: Tensor, y: Tensor, target: Tensor | None):
        """Logits, loss and success at ``x_adv`` without a graph."""
        with torch.no_grad():
            logits = self.model(x_adv)
        return logits, attack_loss(logits, y, target), is_success(logits, y, target)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.cfg.items())
        return f"{type(self).__name__}({args}, seed={self.seed})"
