"""FAB, the fast adaptive boundary attack (Croce & Hein, ICML 2020).

FAB looks for the adversarial example closest to the clean image x_o. At the
iterate x it linearises the decision boundary: for a class s against the
true class y, the plane f_s(x) - f_y(x) + w·(z - x) = 0 with
w = ∇(f_s - f_y)(x). Untargeted, s is the class whose plane is nearest,
|f_s - f_y| / ||w||_q (q the dual norm: l1 for l-inf, l2 for l2); targeted
(FAB-T, as in AutoAttack), s is the target class. Then

  δ   = the smallest step (in the attack's norm) from x onto the plane
        inside the pixel box, δ_o the same from x_o,
  α   = min(||δ|| / (||δ|| + ||δ_o||), α_max),
  x ← clip((1 - α)(x + η·δ) + α(x_o + η·δ_o), 0, 1),

so the iterate is pulled towards x_o by at most α_max (the extrapolation
that keeps it close to the original), and η overshoots the linearised
boundary a little. Where the new iterate is misclassified it is kept if it
is the closest so far, and x ← x_o + β(x - x_o) steps back towards x_o.

BPDA (``bpda``, :mod:`explorer.core.attacks.eot`) applies to FAB as to the
other gradient attacks; EOT does not: FAB looks for the closest point of one
fixed decision boundary, which a randomized model does not have, so in a
suite run with ``eot`` > 1 its FAB-T stage runs without it (as Square does).

AutoAttack's settings are the defaults: 100 iterations, α_max = 0.1,
η = 1.05, β = 0.9; FAB-T takes the ``n_target_classes`` most likely wrong
classes at x_o, one run each. A target's first run starts at x_o; each
further restart at a random point at half the smaller of eps and the
distance of the closest adversarial example found so far. Each run attacks only the
samples not yet broken inside the ``eps`` ball, and a sample leaves a run as
soon as an iterate inside the ball fools the model: the evaluation asks only
whether one exists.

Final search: for a sample broken inside the ball, a bisection on the segment
from x_o to its adversarial example finds a closer one (FAB's minimal
distortion); for one whose closest adversarial example lies outside the ball,
its projection onto the ball is tried. The result never leaves the ball: an
unbroken sample returns that projection (of its closest adversarial example,
else of its last iterate), still correctly classified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from explorer.core.attacks import draws
from explorer.core.attacks.base import AttackStep, is_success
from explorer.core.attacks.blackbox import margin
from explorer.core.attacks.eot import BPDA
from explorer.core.attacks.iterative import EPS, _GradientAttack
from explorer.core.params import Param, ParamError

_TINY = 1e-12
_FAR = 1e12  # breakpoint of a coordinate the plane does not depend on (l2)
_BLOCKED = 1e30  # λ where the plane is out of the box's reach: every room used
_NEWTON_STEPS = 50  # a cap; they converge in about ten

# (rows of the run, iterate) -> (f_s - f_y, its gradient flattened) at the iterate
Plane = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
# (rows of the run, logits) -> per-sample success
Fooled = Callable[[Tensor, Tensor], Tensor]


def plane_step(x: Tensor, w: Tensor, c: Tensor, norm: str) -> Tensor:
    """The smallest δ (l-inf or l2) with w·δ = c and 0 <= x + δ <= 1.

    x: (..., d), w broadcastable to it, c: x's shape without d; sums run
    over the last dimension. Moving coordinate i by at most its room r_i
    (towards 1 where that raises w·δ, towards 0 where it lowers it) gives
    δ_i = sign(w_i) · min(λ·g_i, r_i), with g_i = 1 for l-inf (λ is the
    radius) and g_i = |w_i| for l2 (the KKT point of the box-constrained
    projection); λ solves h(λ) = Σ |w_i| · min(λ·g_i, r_i) = |c|. h is
    piecewise linear, nondecreasing and concave (a sum of mins of linear
    functions), so Newton's method started at λ = 0 climbs it from below,
    never overshoots, and lands exactly once it reaches the solution's
    linear piece: 7 steps for l-inf and 12 for l2 on the built-in model's
    gradients, half the time of sorting the kinks. Where the box cannot reach
    the plane, every coordinate moves to its end (the closest one can get).
    """
    flip = torch.where(c < 0, -1.0, 1.0).to(x.dtype)[..., None]
    direction = (w * flip).sign()  # of each coordinate's move
    target = c.abs()
    a = w.abs()
    room = torch.where(direction > 0, 1 - x, x).clamp_min(0)
    linf = norm == "linf"
    slope = a if linf else a * a
    # λ past which coordinate i is saturated: r_i / g_i
    kink = room if linf else torch.where(a > 0, room / a.clamp_min(_TINY), _FAR)
    tol = 64 * torch.finfo(x.dtype).eps * target
    lam = torch.zeros_like(target)
    gap, rising = target, slope.expand_as(room).sum(-1)
    for _ in range(_NEWTON_STEPS):
        step = lam[..., None] if linf else lam[..., None] * a
        gap = target - (a * torch.minimum(step, room)).sum(-1)
        rising = (slope * (kink > lam[..., None])).sum(-1)  # h's right slope
        going = (gap > tol) & (rising > 0)
        if not bool(going.any()):
            break
        lam = torch.where(going, lam + gap / rising.clamp_min(_TINY), lam)
    lam = torch.where((gap > tol) & (rising <= 0), _BLOCKED, lam)[..., None]
    return direction * torch.minimum(lam if linf else lam * a, room)


def _size(delta: Tensor, norm: str) -> Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def _col(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


@torch.enable_grad()
def target_plane(model: nn.Module, x: Tensor, y: Tensor, t: Tensor
                 ) -> tuple[Tensor, Tensor]:
    """f_t - f_y at ``x`` and its gradient (one backward pass)."""
    x = x.detach().requires_grad_(True)
    z = model(x).float()
    diff = z.gather(1, t[:, None])[:, 0] - z.gather(1, y[:, None])[:, 0]
    (grad,) = torch.autograd.grad(diff.sum(), x)
    return diff.detach(), grad.flatten(1)


@torch.enable_grad()
def closest_plane(model: nn.Module, x: Tensor, y: Tensor, norm: str
                  ) -> tuple[Tensor, Tensor]:
    """The linearised boundary nearest to ``x`` among all classes s ≠ y:
    f_s - f_y and its gradient (one backward pass per class)."""
    x = x.detach().requires_grad_(True)
    z = model(x).float()
    k = z.shape[1]
    grads = torch.stack([
        torch.autograd.grad(z[:, j].sum(), x, retain_graph=j < k - 1)[0].flatten(1)
        for j in range(k)], 1)
    z = z.detach()
    df = z - z.gather(1, y[:, None])
    dg = grads - grads.gather(1, y[:, None, None].expand(-1, 1, grads.shape[2]))
    dual = 1 if norm == "linf" else 2
    dist = df.abs() / dg.norm(p=dual, dim=2).clamp_min(_TINY)
    s = dist.scatter(1, y[:, None], torch.inf).argmin(1)
    return (df.gather(1, s[:, None])[:, 0],
            dg.gather(1, s[:, None, None].expand(-1, 1, dg.shape[2]))[:, 0])


class _Kept:
    """Per sample of the batch: the closest adversarial example, its distance
    (inf while none), whether it lies inside the ball, and the last iterate."""

    def __init__(self, x: Tensor, fooled: Tensor) -> None:
        self.x = x.clone()
        self.last = x.clone()
        self.dist = torch.where(fooled, 0.0, torch.inf).to(x.dtype)
        self.inside = fooled.clone()


class FastAdaptiveBoundary(_GradientAttack):
    name = "fab"
    title = "FAB / FAB-T (fast adaptive boundary)"
    description = ("Croce & Hein: steps onto the linearised decision boundary, "
                   "pulled back towards the clean image, for the closest "
                   "adversarial example; with target classes > 0 it is "
                   "AutoAttack's FAB-T, one run per likely wrong class.")
    params = (
        EPS,
        Param("steps", int, 100, "iterations per run", minimum=1, maximum=10_000),
        Param("norm", str, "linf", "threat model", choices=("linf", "l2")),
        Param("n_target_classes", int, 9, "untargeted mode: one targeted run "
              "against each of the n most likely wrong classes (AutoAttack's "
              "FAB-T); 0 = untargeted FAB (every class's plane)", minimum=0,
              maximum=1000),
        Param("restarts", int, 1, "runs per target; each after the first starts "
              "at a random point at half min(eps, closest distance found)",
              minimum=1, maximum=100),
        Param("alpha_max", float, 0.1, "largest pull towards the clean image per "
              "step", minimum=0.0, maximum=1.0),
        Param("eta", float, 1.05, "overshoot past the linearised boundary",
              minimum=1.0, maximum=10.0),
        Param("beta", float, 0.9, "backward step towards the clean image after "
              "an adversarial iterate", minimum=0.0, maximum=1.0),
        Param("search_steps", int, 10, "bisection steps of the final search "
              "towards the clean image", minimum=0, maximum=100),
        BPDA,
    )  # fmt: skip

    # -- one run ----------------------------------------------------------------
    def _fab_run(self, x0: Tensor, start: Tensor, rows: Tensor, plane: Plane,
                 fooled: Fooled, kept: _Kept) -> Iterator[int]:
        """FAB from ``start`` on the samples ``rows`` of the batch (originals
        ``x0``); updates ``kept``; yields after each iteration."""
        c = self.cfg
        norm, eps = c["norm"], c["eps"]
        shape = x0.shape[1:]
        flat0 = x0.flatten(1)
        x1 = start.flatten(1).clone()
        act = torch.arange(len(rows), device=x0.device)  # positions still running
        for _ in range(c["steps"]):
            if act.numel() == 0:
                return
            xa, xo = x1[act], flat0[act]
            df, w = plane(act, xa.view(-1, *shape))
            # the plane w·z = w·xa - df, reached from xa and from xo
            d_a, d_o = plane_step(torch.stack([xa, xo]), w, torch.stack(
                [-df, -df + (w * (xa - xo)).sum(1)]), norm)
            s_a = _size(d_a, norm).clamp_min(1e-8)
            s_o = _size(d_o, norm).clamp_min(1e-8)
            alpha = (s_a / (s_a + s_o)).clamp(0, c["alpha_max"])[:, None]
            xa = ((1 - alpha) * (xa + c["eta"] * d_a)
                  + alpha * (xo + c["eta"] * d_o)).clamp(0, 1)
            with torch.no_grad():
                logits = self.model(xa.view(-1, *shape))
            adv = fooled(act, logits)
            dist = _size(xa - xo, norm)
            g = rows[act]
            closer = adv & (dist < kept.dist[g])
            if closer.any():
                kept.x[g[closer]] = xa[closer].view(-1, *shape)
                kept.dist[g[closer]] = dist[closer]
            inside = adv & (dist <= eps)
            kept.inside[g[inside]] = True
            xa = torch.where(adv[:, None], xo + c["beta"] * (xa - xo), xa)
            x1[act] = xa
            kept.last[g] = xa.view(-1, *shape)
            act = act[~inside]
            yield 1

    def _start(self, x0: Tensor, dist: Tensor, generator: draws.Draws) -> Tensor:
        """A random point at half min(eps, dist) from ``x0``, in the box."""
        radius = torch.clamp(dist, max=self.cfg["eps"]) / 2
        if self.cfg["norm"] == "linf":
            t = draws.rand(x0.shape, generator, device=x0.device,
                           dtype=x0.dtype) * 2 - 1
        else:
            t = draws.randn(x0.shape, generator, device=x0.device, dtype=x0.dtype)
        unit = t / _col(_size(t, self.cfg["norm"]).clamp_min(_TINY), t)
        return (x0 + unit * _col(radius, x0)).clamp(0, 1)

    # -- the attack ---------------------------------------------------------------
    def _runs(self, x: Tensor, y: Tensor, target: Tensor | None, clean: Tensor
              ) -> tuple[list[tuple[Plane, Fooled]], Fooled]:
        """(plane, success) per run, on the run's rows; the batch's success."""
        k = clean.shape[1]
        if k < 2:
            raise ParamError(f"FAB needs at least 2 classes, the model has {k}")
        model, norm, restarts = self.model, self.cfg["norm"], self.cfg["restarts"]

        def towards(t: Tensor) -> Plane:
            return lambda rows, xs: target_plane(model, xs, y[rows], t[rows])

        if target is not None:
            def hit(rows, z):
                return z.argmax(1) == target[rows]
            return [(towards(target), hit)] * restarts, hit

        def wrong(rows, z):
            return z.argmax(1) != y[rows]

        def nearest(rows, xs):
            return closest_plane(model, xs, y[rows], norm)

        n_targets = min(self.cfg["n_target_classes"], k - 1)
        if n_targets == 0:
            return [(nearest, wrong)] * restarts, wrong
        ranked = clean.scatter(1, y[:, None], -torch.inf).argsort(1, descending=True)
        runs = []
        for j in range(n_targets):
            runs += [(towards(ranked[:, j]), wrong)] * restarts
        return runs, wrong

    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        with torch.no_grad():
            clean = self.model(x)
        runs, fooled = self._runs(x, y, target, clean)
        everyone = torch.arange(x.shape[0], device=x.device)
        kept = _Kept(x, fooled(everyone, clean))
        steps = self.cfg["steps"]
        total = len(runs) * steps
        for r, (plane, run_fooled) in enumerate(runs):
            rows = (~kept.inside).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                break
            x0 = x[rows]
            first = r % self.cfg["restarts"] == 0
            start = x0 if first else self._start(
                x0, kept.dist[rows], draws.rows(generator, rows))
            kept.last[rows] = start

            def on_rows(pos, xs, plane=plane, rows=rows):
                return plane(rows[pos], xs)

            def fooled_rows(pos, z, run_fooled=run_fooled, rows=rows):
                return run_fooled(rows[pos], z)

            for k, _ in enumerate(self._fab_run(x0, start, rows, on_rows,
                                                fooled_rows, kept)):
                if live:
                    yield self._shown(x, y, target, kept, r * steps + k + 1, total)
        x_adv = self._final_search(x, kept, fooled)
        with torch.no_grad():
            logits = self.model(x_adv)
        yield AttackStep(total, total, x_adv, logits, -margin(logits, y, target),
                         is_success(logits, y, target), target)

    def _shown(self, x, y, target, kept: _Kept, step: int, total: int) -> AttackStep:
        """The live view: kept examples inside the ball, else the iterate
        projected onto it (the budget holds at every step)."""
        shown = torch.where(_col(kept.inside, x), kept.x,
                            self._threat().project(kept.last, x))
        with torch.no_grad():
            logits = self.model(shown)
        return AttackStep(step, total, shown, logits, -margin(logits, y, target),
                          is_success(logits, y, target), target)

    @torch.no_grad()
    def _final_search(self, x: Tensor, kept: _Kept, fooled: Fooled) -> Tensor:
        project = self._threat().project
        out = torch.where(_col(kept.inside, x), kept.x, x)
        # Bisection from x_o towards each adversarial example inside the ball.
        rows = (kept.inside & (kept.dist > 0)).nonzero(as_tuple=True)[0]
        if rows.numel() and self.cfg["search_steps"]:
            x0, xe = x[rows], kept.x[rows]
            lo = torch.zeros(len(rows), device=x.device, dtype=x.dtype)
            hi = torch.ones_like(lo)
            for _ in range(self.cfg["search_steps"]):
                mid = (lo + hi) / 2
                adv = fooled(rows, self.model(x0 + _col(mid, x0) * (xe - x0)))
                hi = torch.where(adv, mid, hi)
                lo = torch.where(adv, lo, mid)
            out[rows] = (x0 + _col(hi, x0) * (xe - x0)).clamp(0, 1)
        # Outside the ball: the projection onto it of the closest adversarial
        # example (else of the last iterate), kept whether or not it fools.
        rows = (~kept.inside).nonzero(as_tuple=True)[0]
        if rows.numel():
            found = _col(torch.isfinite(kept.dist[rows]), x)
            far = torch.where(found, kept.x[rows], kept.last[rows])
            out[rows] = project(far, x[rows])
        return out
