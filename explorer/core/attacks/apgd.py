"""Auto-PGD (Croce & Hein 2020): PGD without a step size to tune.

Each run starts at a random point of the ball and takes steps with momentum
(alpha = 0.75). The step size starts at 2·eps and is halved at checkpoints
w_j = ceil(p_j · N_iter), p_0 = 0, p_1 = 0.22,
p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), when since the previous
checkpoint either fewer than rho = 75% of the steps raised the loss, or
neither the step size nor the best loss changed; the search then resumes from
the best point found so far. Per sample the result is the first iterate that
fools the model, else the one with the highest loss.

``apgd-ce`` maximises cross-entropy; ``apgd-dlr`` the difference of logits
ratio, untargeted -(z_y - max_{i≠y} z_i) / (z_π1 - z_π3), or targeted
-(z_y - z_t) / (z_π1 - (z_π3 + z_π4)/2) (π sorts the logits, largest first).
With ``n_target_classes`` > 0 and no explicit target, ``apgd-dlr`` is
AutoAttack's APGD-T: one targeted run per class among the n most likely
wrong ones, each only on the samples still correctly classified.

``eot`` > 1 (randomized models): every loss, gradient and success test is
the mean over that many passes (:mod:`explorer.core.attacks.eot`), so the
step-size checkpoints compare expected losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from explorer.core.attacks import draws
from explorer.core.attacks.base import AttackStep
from explorer.core.attacks.eot import GRADIENT_PARAMS, loss_and_grad, mean_logits
from explorer.core.attacks.iterative import EPS, NORM, _GradientAttack
from explorer.core.attacks.threat import ThreatModel
from explorer.core.params import Param, ParamError

# (logits, rows of the run's batch they belong to) -> per-sample loss to
# maximise / per-sample success
Objective = Callable[[Tensor, Tensor], Tensor]
Fooled = Callable[[Tensor, Tensor], Tensor]

MOMENTUM = 0.75
_TINY = 1e-12


def checkpoint_fractions() -> list[float]:
    """p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) <= 1."""
    p = [0.0, 0.22]
    while (nxt := p[-1] + max(p[-1] - p[-2] - 0.03, 0.06)) <= 1:
        p.append(nxt)
    return p


def checkpoints(n_iter: int) -> list[int]:
    """Iterations w_j = ceil(p_j · N_iter), j >= 1, where the step size may halve.

    The small tolerance keeps float noise (0.41 · 100 = 41.000000000000004)
    from pushing a checkpoint one iteration late.
    """
    marks = (math.ceil(p * n_iter - 1e-9) for p in checkpoint_fractions()[1:])
    return sorted({w for w in marks if 0 < w <= n_iter})


def dlr_loss(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    """Difference of logits ratio (scale invariant); higher is closer to success."""
    top = logits.sort(1, descending=True).values
    z_y = logits.gather(1, y[:, None])[:, 0]
    if target is None:
        other = logits.scatter(1, y[:, None], -torch.inf).amax(1)
        return -(z_y - other) / (top[:, 0] - top[:, 2] + _TINY)
    z_t = logits.gather(1, target[:, None])[:, 0]
    return -(z_y - z_t) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + _TINY)


def _expand(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def _loss_and_grad(model: nn.Module, x: Tensor, objective: Objective, rows: Tensor,
                   eot: int = 1):
    return loss_and_grad(model, x, lambda z: objective(z, rows), eot)


class _Best:
    """Per sample: the first iterate that fools the model, else the highest loss;
    for the ``latest`` samples (EOT, a randomized model) the latest fooling
    iterate, else the latest one (see :mod:`explorer.core.attacks.eot`)."""

    def __init__(self, x: Tensor, logits: Tensor, loss: Tensor, fooled: Tensor):
        self.x, self.logits, self.loss, self.fooled = x, logits, loss, fooled

    def update(self, x: Tensor, logits: Tensor, loss: Tensor, fooled: Tensor,
               latest: Tensor | None = None) -> None:
        """``latest``: the samples kept by the EOT rule."""
        better = (fooled & ~self.fooled) | (~self.fooled & ~fooled
                                            & (loss > self.loss))
        if latest is not None:
            better = torch.where(latest, fooled | ~self.fooled, better)
        self.x = torch.where(_expand(better, x), x, self.x)
        self.logits = torch.where(better[:, None], logits, self.logits)
        self.loss = torch.where(better, loss, self.loss)
        self.fooled = self.fooled | fooled


def apgd_run(
    model: nn.Module,
    x: Tensor,
    objective: Objective,
    fooled: Fooled,
    threat: ThreatModel,
    generator: torch.Generator,
    *,
    n_iter: int,
    rho: float = 0.75,
    eot: int = 1,
) -> Iterator[tuple[int, Tensor, Tensor, Tensor, _Best]]:
    """One APGD run; yields (iteration, iterate, logits, loss, best so far)
    at the start and after each of the ``n_iter`` steps. ``eot`` > 1: logits,
    losses and gradients are means over that many passes (EOT).

    A sample leaves the batch once it is fooled: its result is kept (the
    first fooling iterate) and every other sample's run is computed per
    sample, so dropping it changes nothing but the time. The run ends early
    when all are fooled. Not so for a sample whose EOT passes differ: a
    randomized model's first fooling iterate is often barely across the
    boundary, so it runs all ``n_iter`` steps and keeps its latest fooling
    iterate.
    """
    project = threat.projector(x)
    x_k = project(threat.random_start(x, generator))
    everyone = torch.arange(x.shape[0], device=x.device)
    logits, f_k, grad, random = _loss_and_grad(model, x_k, objective, everyone, eot)
    best = _Best(x_k, logits, f_k, fooled(logits, everyone))
    yield 0, x_k, logits, f_k, best
    x_max, f_max, g_max = x_k, f_k, grad
    eta = torch.full_like(f_k, 2 * threat.eps)
    zero = torch.zeros_like(x)
    x_prev = x_k
    marks, last_mark = set(checkpoints(n_iter)), 0
    raised = torch.zeros_like(f_k)
    eta_at_mark, f_max_at_mark = eta, f_max
    for k in range(n_iter):
        rows = (~best.fooled | random).nonzero(as_tuple=True)[0]
        if rows.numel() == 0:
            return
        # Every threat model's step is x + alpha · d(grad): d at alpha = 1,
        # scaled per sample, gives per-sample step sizes.
        z = project(x_k + _expand(eta, x) * threat.step(zero, grad, 1.0))
        if k > 0:
            z = project(x_k + MOMENTUM * (z - x_k) + (1 - MOMENTUM) * (x_k - x_prev))
        x_prev, x_k = x_k, z
        logits_a, f_a, grad_a, random_a = _loss_and_grad(model, x_k[rows],
                                                         objective, rows, eot)
        logits = logits.index_copy(0, rows, logits_a)
        f_new = f_k.index_copy(0, rows, f_a)
        grad = grad.index_copy(0, rows, grad_a)
        random = random.index_copy(0, rows, random[rows] | random_a)
        hit = torch.zeros_like(best.fooled).index_copy(0, rows,
                                                       fooled(logits_a, rows))
        best.update(x_k, logits, f_new, hit, latest=random if eot > 1 else None)
        raised += f_new > f_k
        f_k = f_new
        higher = f_new > f_max
        x_max = torch.where(_expand(higher, x), x_k, x_max)
        g_max = torch.where(_expand(higher, x), grad, g_max)
        f_max = torch.where(higher, f_new, f_max)
        yield k + 1, x_k, logits, f_new, best
        if k + 1 in marks:
            oscillating = raised < rho * (k + 1 - last_mark)
            stalled = (eta == eta_at_mark) & (f_max == f_max_at_mark)
            halve = oscillating | stalled
            eta = torch.where(halve, eta / 2, eta)
            # Restart from the best point; x_prev stays, as in the paper's
            # x^(k+1) <- x_max, so momentum sees the jump back.
            mask = _expand(halve, x)
            x_k = torch.where(mask, x_max, x_k)
            grad = torch.where(mask, g_max, grad)
            f_k = torch.where(halve, f_max, f_k)
            eta_at_mark, f_max_at_mark = eta, f_max
            raised = torch.zeros_like(f_k)
            last_mark = k + 1


STEPS = Param("steps", int, 100, "iterations per run (N_iter)", minimum=1,
              maximum=10_000)
RESTARTS = Param("restarts", int, 1, "runs from new random starts, each only on "
                 "samples not yet fooled", minimum=1, maximum=100)
RHO = Param("rho", float, 0.75, "halve the step when fewer than this share of "
            "steps since the last checkpoint raised the loss", minimum=0.0,
            maximum=1.0)
APGD_NORM = Param("norm", str, "linf", "threat model (l1 uses the sparse l1 "
                  "step, not APGD-l1's adaptive sparsity)", choices=NORM.choices)
SPARSITY = Param("sparsity", float, 0.01, "l1 only: share of pixels moved per step",
                 minimum=1e-4, maximum=1.0)  # fmt: skip


class _Run:
    """One APGD run's objective and success test, given the run's sample indices."""

    def __init__(self, objective: Callable[[Tensor, Tensor], Tensor],
                 fooled: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.objective, self.fooled = objective, fooled

    def on(self, idx: Tensor) -> tuple[Objective, Fooled]:
        """The run's functions for the samples ``idx`` of the attack's batch."""
        return ((lambda z, rows: self.objective(z, idx[rows])),
                (lambda z, rows: self.fooled(z, idx[rows])))


def _untargeted(y: Tensor, objective: Callable[[Tensor, Tensor], Tensor]) -> _Run:
    return _Run(objective, lambda z, idx: z.argmax(1) != y[idx])


def _targeted(target: Tensor, objective: Callable[[Tensor, Tensor], Tensor]) -> _Run:
    return _Run(objective, lambda z, idx: z.argmax(1) == target[idx])


class _AutoPGD(_GradientAttack):
    """Runs (targets × restarts) of APGD, each on the samples not yet fooled."""

    def _runs(self, x: Tensor, y: Tensor, target: Tensor | None) -> list[_Run]:
        raise NotImplementedError

    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        threat = self._threat()
        runs = self._runs(x, y, target)
        n_iter, eot = self.cfg["steps"], self.cfg["eot"]
        total = len(runs) * n_iter
        logits = mean_logits(self.model, x, eot)
        everyone = torch.arange(x.shape[0], device=x.device)
        objective, fooled = runs[0].on(everyone)
        best = _Best(x.clone(), logits, objective(logits, everyone),
                     fooled(logits, everyone))
        for r, run in enumerate(runs):
            idx = (~best.fooled).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                break
            objective, fooled = run.on(idx)
            for k, x_k, logits_k, loss_k, sub in apgd_run(
                self.model, x[idx], objective, fooled, threat,
                draws.rows(generator, idx),
                n_iter=n_iter, rho=self.cfg["rho"], eot=eot,
            ):
                if live:  # fooled samples show their kept result
                    shown = torch.where(_expand(sub.fooled, x_k), sub.x, x_k)
                    yield AttackStep(r * n_iter + k, total,
                                     best.x.index_copy(0, idx, shown),
                                     best.logits.index_copy(0, idx, logits_k),
                                     best.loss.index_copy(0, idx, loss_k),
                                     best.fooled.index_copy(0, idx, sub.fooled), target)
            # Losses of different targets are not comparable: after the first
            # run, a run's result replaces the kept one only where it fooled.
            won = sub.fooled if r > 0 else torch.ones_like(sub.fooled)
            rows = idx[won]
            best.x[rows] = sub.x[won]
            best.logits[rows] = sub.logits[won]
            best.loss[rows] = sub.loss[won]
            best.fooled[rows] = sub.fooled[won]
        yield AttackStep(total, total, best.x, best.logits, best.loss, best.fooled,
                         target)


class APGDCrossEntropy(_AutoPGD):
    name = "apgd-ce"
    title = "APGD-CE (Auto-PGD, cross-entropy)"
    description = ("Croce & Hein: PGD with momentum and a step size that halves "
                   "by itself at fixed checkpoints; maximises cross-entropy.")
    params = (EPS, STEPS, APGD_NORM, RESTARTS, RHO, SPARSITY, *GRADIENT_PARAMS)

    def _runs(self, x, y, target):
        ce = nn.functional.cross_entropy
        if target is None:
            run = _untargeted(y, lambda z, idx: ce(z, y[idx], reduction="none"))
        else:
            run = _targeted(target, lambda z, idx: -ce(z, target[idx],
                                                        reduction="none"))
        return [run] * self.cfg["restarts"]


class APGDDifferenceOfLogitsRatio(_AutoPGD):
    name = "apgd-dlr"
    title = "APGD-DLR / APGD-T (Auto-PGD, logit ratio)"
    description = ("Croce & Hein: Auto-PGD on the scale-invariant difference of "
                   "logits ratio; with target classes > 0 it is AutoAttack's "
                   "APGD-T, one targeted run per likely wrong class.")
    params = (EPS, STEPS, APGD_NORM,
              Param("n_target_classes", int, 9, "untargeted mode: targeted runs "
                    "against the n most likely wrong classes (AutoAttack's "
                    "APGD-T); 0 = untargeted DLR", minimum=0, maximum=1000),
              RESTARTS, RHO, SPARSITY, *GRADIENT_PARAMS)  # fmt: skip

    def _runs(self, x, y, target):
        logits = mean_logits(self.model, x, self.cfg["eot"])
        k = logits.shape[1]
        restarts = self.cfg["restarts"]
        n_targets = min(self.cfg["n_target_classes"], k - 1)
        if target is not None or n_targets > 0:
            if k < 4:
                raise ParamError(f"targeted DLR needs at least 4 classes, the model "
                                 f"has {k}")
        elif k < 3:
            raise ParamError(f"DLR needs at least 3 classes, the model has {k}")
        if target is not None:
            run = _targeted(target, lambda z, idx: dlr_loss(z, y[idx], target[idx]))
            return [run] * restarts
        if n_targets == 0:
            return [_untargeted(y, lambda z, idx: dlr_loss(z, y[idx]))] * restarts
        # Wrong classes by clean logit, most likely first.
        ranked = logits.scatter(1, y[:, None], -torch.inf).argsort(1, descending=True)
        runs = []
        for j in range(n_targets):
            t = ranked[:, j]
            run = _untargeted(y, lambda z, idx, t=t: dlr_loss(z, y[idx], t[idx]))
            runs += [run] * restarts
        return runs
