"""Carlini & Wagner's l2 attack, and the pieces EAD shares with it.

C&W (S&P 2017) minimise ``||δ||²₂ + c·f(x + δ)`` with the margin loss on the
logits ``f = max(Z_y − max_{i≠y} Z_i, −κ)`` (targeted:
``max(max_{i≠t} Z_i − Z_t, −κ)``), and drop the box constraint by the change
of variables ``x + δ = (tanh(w) + 1) / 2``, optimised with Adam. An outer
binary search picks ``c`` per sample: it is lowered after a success and
raised (tenfold while no upper bound is known) after a failure. Each sample
keeps the smallest-l2 success seen over all search steps; samples never
fooled come back unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from explorer.core.attacks.base import Attack, AttackStep, is_success
from explorer.core.params import Param

# Carlini's code scales by 0.999999 before atanh so that 0 and 1 stay finite.
_TANH_SCALE = 0.999999
_NO_BOUND = 1e10

C_INIT = Param("c", float, 1.0, "initial weight of the classification loss "
               "(the binary search adapts it per sample)", minimum=1e-6,
               maximum=1e6)
KAPPA = Param("kappa", float, 0.0, "confidence: required logit margin",
              minimum=0.0, maximum=1000.0)
SEARCH = Param("binary_search_steps", int, 5, "outer steps of the binary search "
               "on c (1 = fixed c)", minimum=1, maximum=50)  # fmt: skip


def _raw_margin(logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
    cls = y if target is None else target
    own = logits.gather(1, cls[:, None]).squeeze(1)
    mask = torch.nn.functional.one_hot(cls, logits.shape[1]).bool()
    other = logits.masked_fill(mask, -torch.inf).amax(1)
    return own - other if target is None else other - own


def margin_loss(logits: Tensor, y: Tensor, target: Tensor | None,
                kappa: float) -> Tensor:
    """C&W's f₆ per sample; it reaches −κ once the margin is won by κ."""
    return _raw_margin(logits, y, target).clamp_min(-kappa)


def confident_success(logits: Tensor, y: Tensor, target: Tensor | None,
                      kappa: float) -> Tensor:
    """Fooled, and by at least κ in logit margin (C&W's success test)."""
    success = is_success(logits, y, target)
    if kappa > 0:
        success = success & (_raw_margin(logits, y, target) <= -kappa)
    return success


def per_sample(t: Tensor) -> Tensor:
    return t.flatten(1)


def expand(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


class BinarySearch:
    """Per-sample search on c (Carlini's schedule, shared with EAD)."""

    def __init__(self, n: int, c: float, device: torch.device) -> None:
        self.c = torch.full((n,), float(c), device=device)
        self.lower = torch.zeros(n, device=device)
        self.upper = torch.full((n,), _NO_BOUND, device=device)

    def update(self, success: Tensor) -> None:
        self.upper = torch.where(success, torch.minimum(self.upper, self.c),
                                 self.upper)
        self.lower = torch.where(success, self.lower,
                                 torch.maximum(self.lower, self.c))
        bounded = self.upper < _NO_BOUND
        self.c = torch.where(bounded, (self.lower + self.upper) / 2, self.c * 10)


class BestSoFar:
    """Per sample, the successful iterate with the smallest distance."""

    def __init__(self, x: Tensor) -> None:
        self.x = x.clone()
        self.dist = torch.full((x.shape[0],), torch.inf, device=x.device)

    def keep_clean_successes(self, logits: Tensor, y: Tensor,
                             target: Tensor | None, kappa: float) -> None:
        """Samples fooled already stay exactly as they are (distance 0)."""
        success = confident_success(logits, y, target, kappa)
        self.update(self.x, torch.zeros_like(self.dist), success)

    def update(self, x_adv: Tensor, dist: Tensor, success: Tensor) -> None:
        better = success & (dist < self.dist)
        self.dist = torch.where(better, dist, self.dist)
        self.x = torch.where(expand(better, x_adv), x_adv, self.x)


def _to_tanh_space(x: Tensor) -> Tensor:
    return torch.atanh((2 * x - 1) * _TANH_SCALE)


def _from_tanh_space(w: Tensor) -> Tensor:
    return (torch.tanh(w) + 1) / 2


class CarliniWagnerL2(Attack):
    """C&W-l2. Live steps are the Adam iterates of every search step (counted
    globally); the last step is each sample's best success, else the clean
    image. ``loss`` is −f, so higher is closer to success."""

    name = "cw"
    title = "C&W-l2 (Carlini & Wagner)"
    description = ("Carlini & Wagner: Adam in tanh space on ||δ||² + c·margin, "
                   "binary search on c for the smallest l2 perturbation.")
    params = (C_INIT, KAPPA,
              Param("steps", int, 50, "Adam steps per search step", minimum=1,
                    maximum=100_000),
              Param("lr", float, 0.05, "Adam learning rate (in tanh space)",
                    minimum=1e-6, maximum=10.0),
              SEARCH)  # fmt: skip

    @torch.enable_grad()
    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        cfg = self.cfg
        steps, lr, kappa = cfg["steps"], cfg["lr"], cfg["kappa"]
        total = steps * cfg["binary_search_steps"]
        search = BinarySearch(x.shape[0], cfg["c"], x.device)
        best = BestSoFar(x)
        clean_logits = self.evaluate(x, y, target)[0]
        best.keep_clean_successes(clean_logits, y, target, kappa)
        w0 = _to_tanh_space(x)
        beta1, beta2, tiny = 0.9, 0.999, 1e-8
        count = 0
        for _ in range(cfg["binary_search_steps"]):
            w = w0.clone()
            m, v = torch.zeros_like(w), torch.zeros_like(w)
            fooled = torch.zeros_like(search.c, dtype=torch.bool)
            for k in range(1, steps + 1):
                w.requires_grad_(True)
                x_adv = _from_tanh_space(w)
                logits = self.model(x_adv)
                f = margin_loss(logits, y, target, kappa)
                dist = per_sample(x_adv - x).pow(2).sum(1)
                (grad,) = torch.autograd.grad((dist + search.c * f).sum(), w)
                x_adv, logits, f = x_adv.detach(), logits.detach(), f.detach()
                success = confident_success(logits, y, target, kappa)
                best.update(x_adv, dist.detach(), success)
                fooled |= success
                if live:
                    yield AttackStep(count, total, x_adv, logits, -f,
                                     is_success(logits, y, target), target)
                count += 1
                # Adam (Kingma & Ba) on w, written out: it is five lines.
                m = beta1 * m + (1 - beta1) * grad
                v = beta2 * v + (1 - beta2) * grad * grad
                step = lr * (m / (1 - beta1**k)) / ((v / (1 - beta2**k)).sqrt() + tiny)
                w = w.detach() - step
            # The last Adam step's point is scored too (one forward pass).
            x_adv = _from_tanh_space(w)
            logits, _, _ = self.evaluate(x_adv, y, target)
            success = confident_success(logits, y, target, kappa)
            best.update(x_adv, per_sample(x_adv - x).pow(2).sum(1), success)
            search.update(fooled | success)
        logits, _, success = self.evaluate(best.x, y, target)
        yield AttackStep(total, total, best.x, logits,
                         -margin_loss(logits, y, target, kappa), success, target)
