"""EAD: elastic-net attacks (Chen, Sharma, Zhang, Yi, Hsieh; AAAI 2018).

EAD minimises ``c·f(x) + ||x − x₀||²₂ + β||x − x₀||₁`` over the box [0, 1]
with C&W's margin loss ``f``. The smooth part ``g = c·f + ||x − x₀||²₂`` takes
a gradient step; the l1 part is handled by the projected shrinkage-
thresholding operator ``S_β`` (coordinates within β of x₀ snap back to x₀,
the others shrink towards it by β and are clipped to [0, 1]), which is what
makes the perturbation sparse. FISTA: the gradient is taken at a slack point
``y_k = x_k + k/(k+3)·(x_k − x_{k−1})``; the step size decays as
``lr·(1 − k/K)^½``, as in the authors' code, which also thresholds by β
itself (not lr·β), as the paper's update ``S_β`` does. The binary search on
``c`` is C&W's; the best success per sample is chosen by the elastic-net
distance (``decision = en``) or by l1 alone (``l1``).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from explorer.core.attacks.base import Attack, AttackStep, is_success
from explorer.core.attacks.cw import (
    KAPPA,
    SEARCH,
    BestSoFar,
    BinarySearch,
    confident_success,
    margin_loss,
    per_sample,
)
from explorer.core.params import Param


def shrink(z: Tensor, x0: Tensor, beta: float) -> Tensor:
    """Projected shrinkage-thresholding S_β around x₀, onto [0, 1]."""
    diff = z - x0
    shrunk = x0 + diff.sign() * (diff.abs() - beta).clamp_min(0)
    return shrunk.clamp(0, 1)


class ElasticNet(Attack):
    """EAD with FISTA. Live steps are the iterates x_k of every search step
    (counted globally); the last step is each sample's best success by the
    decision rule, else the clean image. ``loss`` is −f."""

    name = "ead"
    title = "EAD (elastic-net attack)"
    description = ("Chen et al.: C&W's margin loss plus an elastic-net penalty, "
                   "solved by FISTA with shrinkage, for sparse perturbations.")
    params = (
        Param("beta", float, 1e-2, "l1 weight (shrinkage threshold per step)",
              minimum=0.0, maximum=1.0),
        Param("c", float, 1.0, "initial weight of the classification loss "
              "(the binary search adapts it per sample)", minimum=1e-6,
              maximum=1e6),
        KAPPA,
        Param("steps", int, 50, "FISTA iterations per search step", minimum=1,
              maximum=100_000),
        Param("lr", float, 0.05, "initial step size (decays to 0)", minimum=1e-6,
              maximum=10.0),
        SEARCH,
        Param("decision", str, "en", "which success to keep: smallest elastic-net "
              "distance (en) or smallest l1 (l1)", choices=("en", "l1")),
    )  # fmt: skip

    def _distance(self, x_adv: Tensor, x: Tensor) -> Tensor:
        delta = per_sample(x_adv - x)
        l1 = delta.abs().sum(1)
        if self.cfg["decision"] == "l1":
            return l1
        return delta.pow(2).sum(1) + self.cfg["beta"] * l1

    @torch.enable_grad()
    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        cfg = self.cfg
        steps, lr, beta, kappa = cfg["steps"], cfg["lr"], cfg["beta"], cfg["kappa"]
        total = steps * cfg["binary_search_steps"]
        search = BinarySearch(x.shape[0], cfg["c"], x.device)
        best = BestSoFar(x)
        clean_logits = self.evaluate(x, y, target)[0]
        best.keep_clean_successes(clean_logits, y, target, kappa)
        count = 0
        for _ in range(cfg["binary_search_steps"]):
            x_k, slack = x.clone(), x.clone()
            fooled = torch.zeros_like(search.c, dtype=torch.bool)
            for k in range(steps):
                slack.requires_grad_(True)
                f = margin_loss(self.model(slack), y, target, kappa)
                smooth = per_sample(slack - x).pow(2).sum(1) + search.c * f
                (grad,) = torch.autograd.grad(smooth.sum(), slack)
                step = lr * (1 - k / steps) ** 0.5
                x_next = shrink(slack.detach() - step * grad, x, beta)
                slack = x_next + k / (k + 3) * (x_next - x_k)
                x_k = x_next
                logits, _, _ = self.evaluate(x_k, y, target)
                success = confident_success(logits, y, target, kappa)
                best.update(x_k, self._distance(x_k, x), success)
                fooled |= success
                if live:
                    yield AttackStep(count, total, x_k, logits,
                                     -margin_loss(logits, y, target, kappa),
                                     is_success(logits, y, target), target)
                count += 1
            search.update(fooled)
        logits, _, success = self.evaluate(best.x, y, target)
        yield AttackStep(total, total, best.x, logits,
                         -margin_loss(logits, y, target, kappa), success, target)
