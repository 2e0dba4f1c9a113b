"""DeepFool (Moosavi-Dezfooli, Fawzi, Frossard; CVPR 2016).

At each iterate the classifier is linearised around the current point: for
every candidate class k ≠ y, ``w_k = ∇Z_k − ∇Z_y`` and ``f_k = Z_k − Z_y``.
The closest linearised boundary is ``l = argmin_k |f_k| / ||w_k||_q`` (q = 2
for the l2 attack, q = 1 for l-inf, the dual norms), and the minimal step onto
it is ``r = (|f_l| + 10⁻⁴) / ||w_l||²₂ · w_l`` (l2) or
``(|f_l| + 10⁻⁴) / ||w_l||₁ · sign(w_l)`` (l-inf). Steps accumulate in
``r_total``; the iterate is ``clip(x + (1 + overshoot)·r_total, 0, 1)``, as
in the authors' code, so a sample stops only once that clipped image is
misclassified, and one that lost its success to the clip keeps stepping.
Candidates are the ``num_classes`` classes with the largest clean logits.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from explorer.core.attacks.base import Attack, AttackStep
from explorer.core.params import Param

_TINY = 1e-12
_PUSH = 1e-4  # the paper's nudge past the linearised boundary


def _candidates(logits: Tensor, y: Tensor, k: int) -> Tensor:
    """(n, k): the true class first, then the k − 1 largest other logits."""
    others = logits.scatter(1, y[:, None], -torch.inf)
    top = others.topk(k - 1, dim=1).indices
    return torch.cat([y[:, None], top], dim=1)


def _expand(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


class DeepFool(Attack):
    """Untargeted, unbounded; live steps are the iterates, the last one the
    result (fooled samples stop moving, the others run ``steps`` times)."""

    name = "deepfool"
    title = "DeepFool"
    targeted_ok = False
    description = ("Moosavi-Dezfooli et al.: steps to the nearest linearised "
                   "decision boundary until the label flips; small perturbations.")
    params = (
        Param("steps", int, 50, "maximum linearisation steps", minimum=1,
              maximum=10_000),
        Param("overshoot", float, 0.02, "relative push past the boundary",
              minimum=0.0, maximum=10.0),
        Param("num_classes", int, 10, "candidate classes (largest clean logits, "
              "true class included)", minimum=2, maximum=100_000),
        Param("norm", str, "l2", "norm of the minimal step", choices=("l2", "linf")),
    )  # fmt: skip

    def _jacobian_rows(self, x_i: Tensor, cand: Tensor):
        """Candidate logits at x_i (n, k) and their gradients (n, k, d)."""
        x_i = x_i.detach().requires_grad_(True)
        logits = self.model(x_i)
        picked = logits.gather(1, cand)
        k = cand.shape[1]
        rows = [
            torch.autograd.grad(picked[:, j].sum(), x_i, retain_graph=j < k - 1)[0]
            for j in range(k)
        ]
        return picked.detach(), torch.stack(rows, 1).flatten(2)

    def _step(self, picked: Tensor, jac: Tensor) -> Tensor:
        """The minimal step to the closest linearised boundary, (n, d)."""
        w = jac[:, 1:] - jac[:, :1]
        f = (picked[:, 1:] - picked[:, :1]).abs()
        dual = 2 if self.cfg["norm"] == "l2" else 1
        w_norm = w.norm(p=dual, dim=2).clamp_min(_TINY)
        closest = (f / w_norm).argmin(1)
        pick = closest[:, None]
        w_l = w.gather(1, pick[:, :, None].expand(-1, -1, w.shape[2])).squeeze(1)
        f_l = f.gather(1, pick).squeeze(1) + _PUSH
        norm_l = w_norm.gather(1, pick).squeeze(1)
        if dual == 2:
            return (f_l / norm_l**2)[:, None] * w_l
        return (f_l / norm_l)[:, None] * w_l.sign()

    @torch.enable_grad()
    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        cfg = self.cfg
        steps, scale = cfg["steps"], 1 + cfg["overshoot"]
        r_total = torch.zeros_like(x).flatten(1)
        x_i = x.clone()
        with torch.no_grad():
            clean = self.model(x)
        cand = _candidates(clean, y, min(cfg["num_classes"], clean.shape[1]))
        for step in range(steps):
            logits, loss, success = self.evaluate(x_i, y, None)
            if live:
                yield AttackStep(step, steps, x_i, logits, loss, success, None)
            # One sync per step buys the early exit DeepFool is known for, and
            # the Jacobian rows are computed for the samples still correct only.
            active = (~success).nonzero(as_tuple=True)[0]
            if active.numel() == 0:
                break
            picked, jac = self._jacobian_rows(x_i[active], cand[active])
            r_total = r_total.index_add(0, active, self._step(picked, jac))
            x_i = (x + scale * r_total.view_as(x)).clamp(0, 1)
        logits, loss, success = self.evaluate(x_i, y, None)
        yield AttackStep(steps, steps, x_i, logits, loss, success, None)
