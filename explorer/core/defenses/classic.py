"""Two classic defenses from the early literature, small and instructive.

``distillation`` (Papernot et al. 2016, defensive distillation): a teacher
trained at temperature T gives soft labels F(x) = softmax(z_T(x) / T); the
student is trained on them with its own logits divided by T, and runs at
T = 1 at test time, so its logits are about T times larger, the softmax
saturates and cross-entropy gradients vanish in float32. Carlini & Wagner
(2016/2017) showed this is gradient masking, not robustness: the app's
masking doctor flags it (the attack loss does not rise). The teacher here is
a fixed built-in model (``teacher``) trained at T = 1: its logits z play the
part of z_T / T (a network trained at T fits the labels with T-times larger
logits), so its soft labels are softmax(z). It must take the student's input
shape and classes. The loss is T · KL(F(x) ‖ softmax(z_student / T)): 0 at a
perfect copy, and the factor T keeps the gradient in the student's logits
at plain cross-entropy's size.

``ensemble-at`` (Tramèr et al. 2018, ensemble adversarial training): half of
each loss is clean cross-entropy, half cross-entropy on FGSM examples whose
source rotates per batch between the model being trained and fixed
pre-trained built-ins (``static``), so the training data carries adversarial
examples transferred from other models. The rotation counter is method
state: a resumed run continues it.
"""

from __future__ import annotations

import collections

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.attacks import LinfBall
from explorer.core.attacks.iterative import gradient_ascent
from explorer.core.defenses.base import Defense
from explorer.core.defenses.methods import EPS
from explorer.core.inference import model_frozen
from explorer.core.params import Param, ParamError

DEFAULT_STATIC = "fmnist-cnn-standard"


def _builtin_names() -> tuple[str, ...]:
    from explorer.core.models.builtin import BUILTINS
    return tuple(BUILTINS)


def _load_fixed(name: str, param: str, model: nn.Module) -> nn.Module:
    """A built-in in eval mode with frozen weights, checked against the model
    being trained (input shape and number of classes)."""
    from explorer.core.models.builtin import load_builtin
    fixed = load_builtin(name).eval()
    for p in fixed.parameters():
        p.requires_grad_(False)
    mine, theirs = getattr(model, "meta", None), getattr(fixed, "meta", None)
    if mine is not None and theirs is not None:
        if (mine.in_shape is not None and theirs.in_shape is not None
                and tuple(mine.in_shape) != tuple(theirs.in_shape)):
            raise ParamError(
                f"{param}: built-in model {name!r} takes inputs of shape "
                f"{tuple(theirs.in_shape)}, but the model being trained takes "
                f"{tuple(mine.in_shape)}")
        if mine.num_classes != theirs.num_classes:
            raise ParamError(
                f"{param}: built-in model {name!r} has {theirs.num_classes} "
                f"classes, but the model being trained has {mine.num_classes}")
    return fixed


def _on(fixed: nn.Module, x: Tensor) -> nn.Module:
    p = next(fixed.parameters(), None)
    if p is not None and p.device != x.device:
        fixed.to(x.device)
    return fixed


def fgsm(model: nn.Module, x: Tensor, y: Tensor, eps: float,
         generator: torch.Generator) -> Tensor:
    """One signed step of size eps on CE from x, onto ball ∩ box, model frozen."""
    with model_frozen(model):
        (last,) = collections.deque(gradient_ascent(
            model, x.detach(), y, None, LinfBall(eps), generator, steps=1,
            alpha=eps, random_start=False, live=False), maxlen=1)
    return last.x_adv.detach()


class DefensiveDistillation(Defense):
    name = "distillation"
    title = "Defensive distillation"
    params = (
        Param("temperature", float, 20.0, "softmax temperature T of training "
              "(the student runs at T = 1 at test time)", minimum=1.0,
              maximum=1000.0),
        Param("teacher", str, DEFAULT_STATIC, "built-in model giving the soft "
              "labels", choices=_builtin_names()),
    )  # fmt: skip
    description = ("Papernot et al. 2016: train on a fixed teacher's soft labels "
                   "softmax(z/T) at temperature T, test at T = 1. Carlini & "
                   "Wagner showed it masks gradients (huge logits); the masking "
                   "doctor flags it.")

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.teacher: nn.Module | None = None

    def prepare(self, model: nn.Module) -> None:
        self.teacher = _load_fixed(self.cfg["teacher"], "teacher", model)

    def loss(self, model, x, y, generator):
        if self.teacher is None:
            self.prepare(model)
        t = self.cfg["temperature"]
        with torch.no_grad():
            soft = F.softmax(_on(self.teacher, x)(x), dim=1)
        logits = model(x)
        # KL(teacher_T ‖ student_T): the soft-label cross-entropy less the
        # teacher's entropy, so the loss reads 0 at a perfect copy. × T: the
        # gradient in the student's logits is then (q_T - p), the size plain
        # cross-entropy gives, so the usual learning rates still train.
        loss = t * F.kl_div(F.log_softmax(logits / t, dim=1), soft,
                            reduction="batchmean")
        return loss, logits


class EnsembleAdversarialTraining(Defense):
    name = "ensemble-at"
    attack_steps = 1  # FGSM
    title = "Ensemble adversarial training"
    params = (
        EPS,
        Param("static", str, DEFAULT_STATIC, "fixed pre-trained built-ins the "
              "transferred examples come from (comma-separated)"),
    )  # fmt: skip
    description = ("Tramèr et al. 2018: half clean, half FGSM cross-entropy; the "
                   "FGSM source rotates per batch between the model being "
                   "trained and fixed pre-trained built-ins (transfer).")

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.statics: list[nn.Module] | None = None
        self.batches = 0

    @property
    def static_names(self) -> list[str]:
        return [s.strip() for s in self.cfg["static"].split(",") if s.strip()]

    def _check(self) -> None:
        super()._check()
        names = self.static_names
        if not names:
            raise ParamError("static must name at least one built-in model")
        known = _builtin_names()
        for n in names:
            if n not in known:
                raise ParamError(f"static: unknown built-in model {n!r} "
                                 f"(choose from {', '.join(known)})")

    def prepare(self, model: nn.Module) -> None:
        self.statics = [_load_fixed(n, "static", model) for n in self.static_names]

    def source(self, model: nn.Module) -> nn.Module:
        """The model this batch's FGSM examples are crafted on."""
        if self.statics is None:
            self.prepare(model)
        k = self.batches % (1 + len(self.statics))
        return model if k == 0 else self.statics[k - 1]

    def adversarial(self, model, x, y, generator) -> Tensor:
        src = self.source(model)
        return fgsm(_on(src, x), x, y, self.cfg["eps"], generator)

    def loss(self, model, x, y, generator):
        x_adv = self.adversarial(model, x, y, generator)
        self.batches += 1
        logits = model(x)
        loss = 0.5 * F.cross_entropy(logits, y) + 0.5 * F.cross_entropy(
            model(x_adv), y)
        return loss, logits

    def state_dict(self):
        return {"batches": self.batches}

    def load_state_dict(self, state):
        self.batches = int(state.get("batches", 0))
