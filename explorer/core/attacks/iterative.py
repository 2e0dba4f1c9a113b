"""Gradient attacks on one loop: FGSM, FGSM with random start, BIM, PGD, MIM.

The loop takes steepest-ascent steps of the attack loss in the threat
model's norm and projects onto the ball ∩ box after every step (a perturbation
kept as ``delta`` and clamped only when used loses its gradient wherever the
clamp is active). Restarts and ``use_best`` keep, per sample, the iterate that
fools the model, or else the one with the highest loss.

Every attack here (and APGD) takes ``eot`` and ``bpda``, for randomized and
non-differentiable models (:mod:`explorer.core.attacks.eot`): with ``eot`` = K
the gradient and loss are means over K passes and success is judged on the
mean logits.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from explorer.core.attacks.base import Attack, AttackStep, attack_loss, is_success
from explorer.core.attacks.eot import (
    GRADIENT_PARAMS,
    bpda_applied,
    check_bpda,
    logits_and_loss,
    loss_and_grad,
    mean_logits,
)
from explorer.core.attacks.threat import (
    THREATS,
    ThreatModel,
    linf_budget_error,
    make_threat,
)
from explorer.core.params import Param

EPS = Param("eps", float, 0.1, "perturbation budget in the threat model's norm "
            "(pixel units; l-inf at most 1)", minimum=0.0, maximum=1000.0, unit="px")
ALPHA = Param("alpha", float, 0.01, "step size in the threat model's norm",
              minimum=0.0, maximum=1000.0, unit="px")
STEPS = Param("steps", int, 20, "gradient steps", minimum=1, maximum=10_000)
NORM = Param("norm", str, "linf", "threat model", choices=tuple(THREATS))
SPARSITY = Param("sparsity", float, 0.01, "l1 only: share of pixels moved per step",
                 minimum=1e-4, maximum=1.0)  # fmt: skip


class _Best:
    """Per sample, the iterate that fools the model, else the highest loss."""

    def __init__(self, x: Tensor) -> None:
        self.x = x.clone()
        self.loss = torch.full((x.shape[0],), -torch.inf, device=x.device)
        self.success = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        self.logits: Tensor | None = None

    def update(self, x: Tensor, logits: Tensor, loss: Tensor, success: Tensor,
               only: Tensor | None = None) -> None:
        """``only``: the samples that may change (the others keep theirs)."""
        better = (success & ~self.success) | (
            (success == self.success) & (loss > self.loss)
        )
        if only is not None:
            better = better & only
        mask = better.view(-1, *([1] * (x.dim() - 1)))
        self.x = torch.where(mask, x, self.x)
        self.loss = torch.where(better, loss, self.loss)
        self.success = self.success | (success & better)
        self.logits = logits if self.logits is None else torch.where(
            better[:, None], logits, self.logits)


@torch.enable_grad()
def gradient_ascent(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    target: Tensor | None,
    threat: ThreatModel,
    generator: torch.Generator,
    *,
    steps: int,
    alpha: float,
    random_start: bool,
    restarts: int = 1,
    momentum: float | None = None,
    use_best: bool = False,
    live: bool = True,
    eot: int = 1,
) -> Iterator[AttackStep]:
    """The shared loop. Yields every iterate when ``live``; always the result.

    ``eot`` > 1 averages gradients, losses and logits over that many passes,
    and ``use_best`` then compares, for a sample whose passes differ, only
    the restarts' last iterates: the per-step figures are estimates from a
    few passes of a randomized model, and keeping the best of them picked
    points worse than the ascent's last one (measured on a noisy model with
    the same draws: 0.3 to 0.6 points more robust accuracy than the last
    iterate, which EOTPGD returns).
    """
    total = restarts * steps
    track = use_best or restarts > 1
    project = threat.projector(x)
    best = _Best(x) if track else None
    count = 0
    x_adv = x
    for _ in range(restarts):
        x_adv = threat.random_start(x, generator) if random_start else x.clone()
        velocity = torch.zeros_like(x) if momentum is not None else None
        for _ in range(steps):
            logits, loss, grad, random = loss_and_grad(
                model, x_adv, lambda z: attack_loss(z, y, target), eot)
            if live or track:
                success = is_success(logits, y, target)
                if best is not None:
                    best.update(x_adv, logits, loss, success, only=~random)
                if live:
                    yield AttackStep(count, total, x_adv, logits, loss, success, target)
            if velocity is not None:
                # Dong et al.: accumulate l1-normalised gradients.
                scale = grad.abs().flatten(1).mean(1).clamp_min(1e-12)
                velocity = momentum * velocity + grad / scale.view(-1, *[1] * (
                    grad.dim() - 1))
                grad = velocity
            x_adv = project(threat.step(x_adv, grad, alpha))
            count += 1
        if live or track:
            logits, loss, _, _ = logits_and_loss(
                model, x_adv, lambda z: attack_loss(z, y, target), eot)
            success = is_success(logits, y, target)
            if best is not None:
                best.update(x_adv, logits, loss, success)
    if best is not None:
        yield AttackStep(total, total, best.x, best.logits,
                         best.loss, best.success, target)
    elif live:
        yield AttackStep(total, total, x_adv, logits, loss, success, target)
    else:
        yield AttackStep(total, total, x_adv, None, None, None, target)


class _GradientAttack(Attack):
    """Shared budget checks, threat construction, EOT and BPDA (the
    subclasses list :data:`~explorer.core.attacks.eot.GRADIENT_PARAMS`; FAB
    lists only BPDA, so ``eot`` and ``bpda`` default to off here)."""

    def _run(self, x, y, target, live: bool, ids=None) -> Iterator[AttackStep]:
        with bpda_applied(self.model, self.cfg.get("bpda", "off")):
            yield from super()._run(x, y, target, live, ids)

    def _resolve_target(self, x, y, target, generator) -> Tensor | None:
        mode = self.cfg.get("targeted", "none")
        if (target is not None or mode != "least-likely"
                or self.cfg.get("eot", 1) == 1):
            return super()._resolve_target(x, y, target, generator)
        return mean_logits(self.model, x, self.cfg["eot"]).argmin(1)

    def _threat(self) -> ThreatModel:
        norm = self.cfg.get("norm", "linf")
        extra = {"sparsity": self.cfg["sparsity"]} if norm == "l1" else {}
        return make_threat(norm, self.cfg["eps"], **extra)

    def _check(self) -> None:
        check_bpda(self.model, self.cfg.get("bpda", "off"))
        if self.cfg.get("norm", "linf") == "linf":
            for key in ("eps", "alpha"):
                if key in self.cfg and self.cfg[key] > 1:
                    raise linf_budget_error(key, self.cfg[key])

    def budget(self) -> tuple[str, float]:
        return self.cfg.get("norm", "linf"), self.cfg["eps"]


class ProjectedGradientDescent(_GradientAttack):
    name = "pgd"
    title = "PGD (projected gradient descent)"
    description = ("Madry et al.: random start in the ball, then signed/normalised "
                   "gradient steps, projected back after each one.")
    params = (EPS, ALPHA, STEPS, NORM,
              Param("random_start", bool, True, "start at a random point of the ball"),
              Param("restarts", int, 1, "independent runs; the worst case is kept",
                    minimum=1, maximum=100),
              Param("use_best", bool, True, "keep each sample's best iterate, not "
                    "the last"),
              SPARSITY, *GRADIENT_PARAMS)  # fmt: skip

    def _steps(self, x, y, target, generator, live):
        c = self.cfg
        return gradient_ascent(
            self.model, x, y, target, self._threat(), generator, steps=c["steps"],
            alpha=c["alpha"], random_start=c["random_start"], restarts=c["restarts"],
            use_best=c["use_best"], live=live, eot=c["eot"],
        )


class BasicIterative(_GradientAttack):
    name = "bim"
    title = "BIM (basic iterative method)"
    description = "Kurakin et al.: iterated FGSM from the clean image, l-inf."
    params = (EPS, Param("alpha", float, 0.01, "step size", minimum=0.0, maximum=1.0,
                         unit="px"),
              Param("steps", int, 10, "gradient steps", minimum=1, maximum=10_000),
              *GRADIENT_PARAMS)

    def _steps(self, x, y, target, generator, live):
        c = self.cfg
        return gradient_ascent(self.model, x, y, target, self._threat(), generator,
                               steps=c["steps"], alpha=c["alpha"],
                               random_start=False, live=live, eot=c["eot"])


class MomentumIterative(_GradientAttack):
    name = "mim"
    title = "MIM (momentum iterative method)"
    description = "Dong et al.: BIM with an accumulated, l1-normalised gradient."
    params = (EPS, ALPHA, Param("steps", int, 10, "gradient steps", minimum=1,
                                maximum=10_000),
              Param("norm", str, "linf", "threat model", choices=("linf", "l2")),
              Param("decay", float, 1.0, "momentum decay factor mu", minimum=0.0,
                    maximum=10.0), *GRADIENT_PARAMS)  # fmt: skip

    def _steps(self, x, y, target, generator, live):
        c = self.cfg
        return gradient_ascent(self.model, x, y, target, self._threat(), generator,
                               steps=c["steps"], alpha=c["alpha"],
                               random_start=False, momentum=c["decay"], live=live,
                               eot=c["eot"])


class FastGradientSign(_GradientAttack):
    name = "fgsm"
    title = "FGSM (fast gradient sign method)"
    description = "Goodfellow et al.: one signed gradient step of size eps."
    params = (EPS, *GRADIENT_PARAMS)

    def _steps(self, x, y, target, generator, live):
        return gradient_ascent(self.model, x, y, target, self._threat(), generator,
                               steps=1, alpha=self.cfg["eps"], random_start=False,
                               live=live, eot=self.cfg["eot"])


class FastGradientRandomStart(_GradientAttack):
    name = "fgsm-rs"
    title = "FGSM with random start"
    description = ("Wong et al. (Fast-AT): uniform start in the ball, one signed "
                   "step of alpha = ratio × eps, projected.")
    params = (EPS, Param("alpha_ratio", float, 1.25, "step size as a multiple of eps",
                         minimum=0.0, maximum=10.0), *GRADIENT_PARAMS)

    def _steps(self, x, y, target, generator, live):
        c = self.cfg
        return gradient_ascent(self.model, x, y, target, self._threat(), generator,
                               steps=1, alpha=c["alpha_ratio"] * c["eps"],
                               random_start=True, live=live, eot=c["eot"])
