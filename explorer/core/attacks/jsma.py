"""JSMA: the Jacobian-based saliency map attack (Papernot et al., EuroS&P 2016).

With ``α = ∂Z_t/∂x`` (the target logit) and ``β = ∂(Σ_{j≠t} Z_j)/∂x`` (all
the others), the pair saliency of features p, q is ``−(α_p + α_q)(β_p + β_q)``
where the pair raises the target and lowers the rest (``α_pq > 0 > β_pq`` when
increasing, θ > 0; the signs swap when decreasing, θ < 0). Each iteration
changes the most salient pair of the search domain by θ (clipped to [0, 1])
and takes both features out of the domain; the domain starts as the features
that can still move in θ's direction. It stops when the target is reached,
no admissible pair is left, or ``⌊γ·d / 2⌋`` iterations changed γ·d features.
The saliency is that of the softmax outputs F, as in the paper (``outputs =
probs``), or of the logits Z (``logits``, Carlini & Wagner's JSMA-Z).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from explorer.core.attacks import draws
from explorer.core.attacks.base import Attack, AttackStep
from explorer.core.params import Param, ParamError

# Pair scores are (n, d, d); keep one chunk of them near 128 MB of float32.
_PAIR_ELEMENTS = 1 << 25


@torch.no_grad()
def _best_pairs(alpha: Tensor, beta: Tensor, domain: Tensor,
                increase: bool) -> tuple[Tensor, Tensor]:
    """Per sample the most salient admissible pair (n, 2) and whether one exists.

    Flipping the signs for a decrease makes both cases "α_pq > 0 > β_pq", and
    the score ``(α_pq)⁺·(−β_pq)⁺`` is then positive exactly on admissible
    pairs; features outside the domain get α = −∞ so no pair uses them.
    """
    n, d = alpha.shape
    if not increase:
        alpha, beta = -alpha, -beta
    alpha = alpha.masked_fill(~domain, -torch.inf)
    chunk = max(1, _PAIR_ELEMENTS // (d * d))
    pairs, found = [], []
    for lo in range(0, n, chunk):
        a, b = alpha[lo:lo + chunk], beta[lo:lo + chunk]
        score = (a[:, :, None] + a[:, None, :]).clamp_(min=0)
        score.mul_((b[:, :, None] + b[:, None, :]).neg_().clamp_(min=0))
        score.diagonal(dim1=1, dim2=2).zero_()
        value, flat = score.flatten(1).max(1)
        pairs.append(torch.stack([flat // d, flat % d], 1))
        found.append(value > 0)
    return torch.cat(pairs), torch.cat(found)


class SaliencyMap(Attack):
    """Targeted by design. Untargeted (targeted = none), each sample gets a
    random target class from the seeded generator and stops as soon as its
    label changes. Live steps are the iterates; the last one is the result."""

    name = "jsma"
    title = "JSMA (Jacobian saliency map)"
    description = ("Papernot et al.: changes the most salient pixel pairs towards "
                   "a target class (a random one when untargeted), few pixels.")
    params = (
        Param("theta", float, 1.0, "change per chosen pixel (negative darkens)",
              minimum=-1.0, maximum=1.0),
        Param("gamma", float, 0.1, "largest share of pixels changed", minimum=0.0,
              maximum=1.0),
        Param("outputs", str, "probs", "saliency of the softmax probabilities "
              "(the paper's F) or of the logits (JSMA-Z)", choices=("probs", "logits")),
    )  # fmt: skip

    def _check(self) -> None:
        if self.cfg["theta"] == 0:
            raise ParamError("theta must be nonzero (in [-1, 0) or (0, 1])")

    def budget(self) -> tuple[str, float]:
        """l0 budget as a *share* of the input's features (γ), not a count."""
        return "l0", self.cfg["gamma"]

    def _saliency(self, x_flat: Tensor, shape: tuple[int, ...], goal: Tensor):
        x_in = x_flat.detach().view(-1, *shape).requires_grad_(True)
        out = self.model(x_in)
        if self.cfg["outputs"] == "probs":
            # The probabilities sum to one, so β = −α exactly: one backward.
            p_t = out.softmax(1).gather(1, goal[:, None]).sum()
            (alpha,) = torch.autograd.grad(p_t, x_in)
            return alpha.flatten(1), -alpha.flatten(1)
        z_t = out.gather(1, goal[:, None]).sum()
        (alpha,) = torch.autograd.grad(z_t, x_in, retain_graph=True)
        (total,) = torch.autograd.grad(out.sum(), x_in)
        return alpha.flatten(1), (total - alpha).flatten(1)

    @torch.enable_grad()
    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        theta, shape = self.cfg["theta"], tuple(x.shape[1:])
        n, d = x.shape[0], x[0].numel()
        total = int(self.cfg["gamma"] * d) // 2
        goal = target
        if goal is None:
            with torch.no_grad():
                k = self.model(x).shape[1]
            offset = draws.randint(1, k, y.shape, generator, device=x.device)
            goal = (y + offset) % k
        x_flat = x.flatten(1)
        domain = x_flat < 1 if theta > 0 else x_flat > 0
        stuck = torch.zeros(n, dtype=torch.bool, device=x.device)
        for step in range(total + 1):
            x_adv = x_flat.view_as(x)
            logits, loss, success = self.evaluate(x_adv, y, target)
            if live and step < total:
                yield AttackStep(step, total, x_adv, logits, loss, success, target)
            # One sync per step: only unfinished samples get the saliency search.
            active = (~success & ~stuck).nonzero(as_tuple=True)[0]
            if step == total or active.numel() == 0:
                break
            alpha, beta = self._saliency(x_flat[active], shape, goal[active])
            pq, found = _best_pairs(alpha, beta, domain[active], theta > 0)
            rows, dom = x_flat[active], domain[active]
            moved = (rows.gather(1, pq) + theta).clamp(0, 1)
            rows = torch.where(found[:, None], rows.scatter(1, pq, moved), rows)
            dom = torch.where(found[:, None], dom.scatter(1, pq, False), dom)
            x_flat = x_flat.index_copy(0, active, rows)
            domain = domain.index_copy(0, active, dom)
            stuck = stuck.index_copy(0, active, ~found)
        yield AttackStep(total, total, x_flat.view_as(x), logits, loss, success,
                         target)
