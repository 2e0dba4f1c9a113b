"""Score-based black-box attacks: SPSA and Square Attack.

Both see only the model's outputs (logits) for the images they query; they
run under ``torch.no_grad()`` and never ask for a gradient. Each sample stops
being queried once it is fooled, so a batch gets cheaper as it falls.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from explorer.core.attacks import draws
from explorer.core.attacks.base import Attack, AttackStep, attack_loss, is_success
from explorer.core.attacks.square_steps import (
    l2_init,
    propose_l2,
    propose_linf,
    stripes_init,
)
from explorer.core.attacks.threat import L2Ball, LinfBall, linf_budget_error
from explorer.core.params import Param, ParamError

EPS_LINF = Param("eps", float, 0.1, "l-inf budget in pixel units", minimum=0.0,
                 maximum=1.0, unit="px")
LIVE_EVERY = 10  # Square yields an iterate every this many queries
_CHUNK = 8192  # images per forward pass when SPSA evaluates its directions


def margin(logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
    """Per-sample logit margin to success: positive while not yet fooled."""
    ref = y if target is None else target
    own = logits.gather(1, ref[:, None])[:, 0]
    other = logits.scatter(1, ref[:, None], -torch.inf).amax(1)
    return own - other if target is None else other - own


def _index(t: Tensor | None, idx: Tensor | slice) -> Tensor | None:
    return None if t is None else t[idx]


def _need_images(name: str, x: Tensor) -> None:
    if x.dim() != 4:
        raise ParamError(f"{name} needs image batches N×C×H×W, got shape "
                         f"{tuple(x.shape)}")


class SPSA(Attack):
    """Uesato et al. 2018: finite differences along random ±1 directions."""

    name = "spsa"
    title = "SPSA (gradient-free)"
    kind = "black-box"
    description = ("Uesato et al.: estimates the gradient from the model's outputs "
                   "at x ± delta·v for random ±1 directions v, then takes Adam steps "
                   "in the l-inf ball.")
    params = (
        EPS_LINF,
        Param("steps", int, 20, "update steps", minimum=1, maximum=10_000),
        Param("lr", float, 0.02, "Adam learning rate (pixel units)", minimum=0.0,
              maximum=1.0, unit="px"),
        Param("delta", float, 0.01, "finite-difference step along each direction",
              minimum=1e-6, maximum=1.0, unit="px"),
        Param("samples", int, 32, "random directions per step (each costs two "
              "queries per image)", minimum=1, maximum=4096),
        Param("loss", str, "margin", "objective: logit margin or cross-entropy",
              choices=("margin", "ce")),
    )  # fmt: skip

    def budget(self) -> tuple[str, float]:
        return "linf", self.cfg["eps"]

    def _objective(self, logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        if self.cfg["loss"] == "margin":
            return -margin(logits, y, target)
        return attack_loss(logits, y, target)

    def _estimate(self, x: Tensor, y: Tensor, target: Tensor | None,
                  generator: torch.Generator) -> Tensor:
        """SPSA gradient of the objective at each image of ``x``."""
        n, d = self.cfg["samples"], self.cfg["delta"]
        per_chunk = max(1, _CHUNK // (2 * n))
        grads = []
        for lo in range(0, x.shape[0], per_chunk):
            xs = x[lo:lo + per_chunk]
            b = xs.shape[0]
            v = draws.randint(0, 2, (b, n, *xs.shape[1:]),
                              draws.rows(generator, slice(lo, lo + b)),
                              device=x.device).to(x.dtype) * 2 - 1
            queries = torch.cat([xs[:, None] + d * v, xs[:, None] - d * v], 1)
            logits = self.model(queries.flatten(0, 1))
            rep = 2 * n
            tgt = _index(target, slice(lo, lo + per_chunk))
            values = self._objective(
                logits, y[lo:lo + per_chunk].repeat_interleave(rep),
                None if tgt is None else tgt.repeat_interleave(rep)).view(b, rep)
            slope = (values[:, :n] - values[:, n:]) / (2 * d)
            # For v in {-1, 1}^d, 1/v = v: the SPSA estimate is mean(slope · v).
            grads.append((slope.view(b, n, *[1] * (x.dim() - 1)) * v).mean(1))
        return torch.cat(grads)

    @torch.no_grad()
    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        c = self.cfg
        threat = LinfBall(c["eps"])
        beta1, beta2, tiny = 0.9, 0.999, 1e-8
        x_adv, first, second = x.clone(), torch.zeros_like(x), torch.zeros_like(x)
        logits = self.model(x)
        loss = self._objective(logits, y, target)
        success = is_success(logits, y, target)
        best_x, best_loss = x_adv, loss
        for t in range(1, c["steps"] + 1):
            active = (~success).nonzero(as_tuple=True)[0]
            if active.numel() == 0:
                break
            xa, ya, ta = x_adv[active], y[active], _index(target, active)
            g = self._estimate(xa, ya, ta, draws.rows(generator, active))
            m = beta1 * first[active] + (1 - beta1) * g
            s = beta2 * second[active] + (1 - beta2) * g * g
            first = first.index_copy(0, active, m)
            second = second.index_copy(0, active, s)
            m_hat, s_hat = m / (1 - beta1**t), s / (1 - beta2**t)
            xa = threat.project(xa + c["lr"] * m_hat / (s_hat.sqrt() + tiny), x[active])
            la = self.model(xa)
            x_adv = x_adv.index_copy(0, active, xa)
            logits = logits.index_copy(0, active, la)
            loss = loss.index_copy(0, active, self._objective(la, ya, ta))
            success = success.index_copy(0, active, is_success(la, ya, ta))
            better = success | (loss > best_loss)
            best_x = torch.where(better.view(-1, *[1] * (x.dim() - 1)), x_adv, best_x)
            best_loss = torch.where(better, loss, best_loss)
            if live:
                yield AttackStep(t, c["steps"], x_adv, logits, loss, success, target)
        logits = self.model(best_x)
        yield AttackStep(c["steps"], c["steps"], best_x, logits,
                         self._objective(logits, y, target),
                         is_success(logits, y, target), target)


_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, it: int, n_iter: int, rescale: bool = True) -> float:
    """Andriushchenko et al.: p halves at these iterations of a 10 000-query
    run; shorter runs rescale the marks to their own length unless
    ``rescale`` is False (AutoAttack's setting: the marks at fixed counts)."""
    scaled = int(it / n_iter * 10_000) if rescale else it
    return p_init / 2 ** sum(scaled > mark for mark in _SCHEDULE)


class Square(Attack):
    """Andriushchenko et al. 2020: random square updates, kept if they help."""

    name = "square"
    title = "Square Attack"
    kind = "black-box"
    description = ("Andriushchenko et al.: random square-shaped changes at the edge "
                   "of the budget, each kept only if it lowers the margin loss.")
    params = (
        Param("eps", float, 0.1, "budget in the threat model's norm (pixel units)",
              minimum=0.0, maximum=1000.0, unit="px"),
        Param("norm", str, "linf", "threat model", choices=("linf", "l2")),
        Param("queries", int, 1000, "maximum queries (iterations) per image",
              minimum=1, maximum=100_000),
        Param("p_init", float, 0.0, "initial share of pixels in a square; 0 picks "
              "the paper's value (0.8 l-inf, 0.1 l2)", minimum=0.0, maximum=1.0),
        Param("rescale_schedule", bool, True, "halve p at marks scaled to the "
              "query budget; false: at fixed query counts (AutoAttack)"),
    )  # fmt: skip

    def _check(self) -> None:
        if self.cfg["norm"] == "linf" and self.cfg["eps"] > 1:
            raise linf_budget_error("eps", self.cfg["eps"])

    def budget(self) -> tuple[str, float]:
        return self.cfg["norm"], self.cfg["eps"]

    def _loss(self, logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        """What Square minimises: the margin (untargeted), CE to the target."""
        if target is None:
            return margin(logits, y, None)
        return -attack_loss(logits, y, target)

    @torch.no_grad()
    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        _need_images(self.name, x)
        c = self.cfg
        eps, linf, n_iter = c["eps"], c["norm"] == "linf", c["queries"]
        p_init = c["p_init"] or (0.8 if linf else 0.1)
        threat = LinfBall(eps) if linf else L2Ball(eps)
        init = stripes_init if linf else l2_init
        x_best = threat.project(init(x, eps, generator), x)
        logits = self.model(x_best)
        loss, marg = self._loss(logits, y, target), margin(logits, y, target)
        work = _WorkingSet(x, y, target, x_best, logits, loss, marg)
        done = 0
        for it in range(n_iter):
            if work.empty:
                break
            p = p_schedule(p_init, it, n_iter, c["rescale_schedule"])
            if linf:  # inside the ball by construction (see propose_linf)
                x_new = propose_linf(work.x, work.x_best, eps, p,
                                     draws.rows(generator, work.rows))
            else:
                x_new = threat.project(
                    propose_l2(work.x, work.x_best, eps, p,
                               draws.rows(generator, work.rows)), work.x)
            la = self.model(x_new)
            loss_new = self._loss(la, work.y, work.target)
            better = loss_new < work.loss
            if better.any():
                work.improve(better, x_new, la, loss_new,
                             loss_new if target is None else None)
            done = it + 1
            if live and done % LIVE_EVERY == 0:  # copies: the loop writes in place
                work.flush()
                yield AttackStep(done, n_iter, x_best.clone(), logits.clone(), -loss,
                                 is_success(logits, y, target), target)
        work.flush()
        yield AttackStep(done, n_iter, x_best, logits, -loss,
                         is_success(logits, y, target), target)


class _WorkingSet:
    """Square's samples still to fool, packed together.

    The full-batch tensors (``x_best``, ``logits``, ``loss``, ``marg``) are
    written back only when samples leave the set (fooled) and on ``flush``;
    between those, every query works on the packed copies, so the loop does
    no gathering from the full batch. Late in an attack almost nothing is
    fooled any more, and the packed set stays the same for thousands of
    queries.
    """

    def __init__(self, x, y, target, x_best, logits, loss, marg) -> None:
        self._full = (x_best, logits, loss, marg)
        self._x, self._y, self._target = x, y, target
        self.rows = torch.arange(len(x), device=x.device)
        self._select(marg > 0)

    def _select(self, keep: Tensor) -> None:
        self.rows = self.rows[keep]
        x_best, logits, loss, marg = self._full
        r = self.rows
        self.x, self.y, self.target = self._x[r], self._y[r], _index(self._target, r)
        self.x_best, self.logits = x_best[r], logits[r]
        self.loss, self.marg = loss[r], marg[r]

    @property
    def empty(self) -> bool:
        return self.rows.numel() == 0

    def improve(self, better: Tensor, x_new: Tensor, logits: Tensor, loss: Tensor,
                marg: Tensor | None) -> None:
        """Keep the improved proposals; samples now fooled leave the set."""
        self.x_best[better] = x_new[better]
        self.logits[better] = logits[better]
        self.loss[better] = loss[better]
        if marg is None:  # targeted: the margin is not the loss
            marg = margin(logits, self.y, self.target)
        self.marg[better] = marg[better]
        fooled = self.marg <= 0
        if fooled.any():
            self.flush()
            self._select(~fooled)

    def flush(self) -> None:
        """Write the packed state back into the full-batch tensors."""
        x_best, logits, loss, marg = self._full
        r = self.rows
        x_best[r], logits[r], loss[r], marg[r] = (self.x_best, self.logits,
                                                  self.loss, self.marg)
