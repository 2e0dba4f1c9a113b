"""Non-parametric two-sample tests and their attack and defense.

A two-sample test asks whether samples X ~ P and Y ~ Q come from the same
distribution. Its statistic here is the unbiased squared maximum mean
discrepancy (MMD²_u) under a kernel, and its null distribution is found by
permuting the pooled sample (:func:`permutation_test`, vectorised over
permutations with the kernel matrix computed once).

Kernels:

* :class:`GaussianKernel` — the baseline, exp(-‖x-y‖² / h) on pixels with
  the median heuristic h = median pairwise squared distance (MMD-G);
* :class:`DeepKernel` — Liu et al. (2020), "Learning Deep Kernels for
  Non-Parametric Two-Sample Tests": k(x, y) = [(1-ε) κ(φ(x), φ(y)) + ε] q(x, y)
  with κ and q Gaussian (on features and on pixels), φ a small network and
  ε, both bandwidths learned; trained (:func:`train_deep_kernel`) on one
  half of the samples to maximise the test-power criterion
  MMD²_u / σ̂_H1 (:func:`power_criterion`), tested on the other half (MMD-D).

Attack and defense (Xu et al., ICML 2022, "Adversarial Attacks and Defenses
for Non-Parametric Two-Sample Tests"): :func:`attack_second_sample`
perturbs Y within an l-inf ball (PGD, kept in [0, 1]) so that several tests
*jointly* fail to reject, lowering the power criteria of all the tests that
still reject, each pulling equally; the defense trains the deep kernel on pairs whose
Y is attacked against it (``adversarial=True``, MMD-RoD), and an ensemble of
such kernels rejects when any member's p-value is at most alpha / members.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from explorer.core.jobs import CancelToken
from explorer.core.params import ParamError

LAMBDA = 1e-8  # added to σ̂²_H1 in the criterion (Liu et al.)


def sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances of the rows of ``a`` and ``b``."""
    a, b = a.flatten(1), b.flatten(1)
    d = a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T
    return d.clamp_min(0)


def _median_off_diagonal(d: Tensor) -> Tensor:
    n = len(d)
    off = d[~torch.eye(n, dtype=torch.bool, device=d.device)]
    return off.median().clamp_min(1e-6)


class GaussianKernel:
    """exp(-‖x-y‖² / h) with h the median pairwise squared distance of the
    samples it was fitted on (kept fixed afterwards)."""

    name = "MMD-G"

    def __init__(self, bandwidth: float) -> None:
        self.bandwidth = float(bandwidth)

    @classmethod
    def fit(cls, x: Tensor, y: Tensor) -> GaussianKernel:
        z = torch.cat([x, y]).detach()
        return cls(float(_median_off_diagonal(sq_dists(z, z))))

    def matrix(self, z: Tensor) -> Tensor:
        return torch.exp(-sq_dists(z, z) / self.bandwidth)


def _features(shape: Sequence[int], width: int) -> nn.Module:
    if len(shape) == 3:  # images: two strided convolutions
        c, h, w = shape
        hh, ww = (h + 3) // 4, (w + 3) // 4
        return nn.Sequential(
            nn.Conv2d(c, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(16 * hh * ww, width))
    d = math.prod(shape)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 64), nn.LeakyReLU(0.2),
                         nn.Linear(64, width))


class DeepKernel(nn.Module):
    """Liu et al.'s deep kernel [(1-ε) κ(φ(x), φ(y)) + ε] q(x, y)."""

    name = "MMD-D"

    def __init__(self, shape: Sequence[int], width: int = 32) -> None:
        super().__init__()
        self.phi = _features(tuple(shape), width)
        self.log_bw_phi = nn.Parameter(torch.zeros(()))
        self.log_bw_q = nn.Parameter(torch.zeros(()))
        self.eps_logit = nn.Parameter(torch.tensor(-4.0))

    @torch.no_grad()
    def init_bandwidths(self, z: Tensor) -> None:
        """Both bandwidths start at the median heuristic on ``z``."""
        self.log_bw_phi.copy_(_median_off_diagonal(sq_dists(*(self.phi(z),) * 2))
                              .log())
        self.log_bw_q.copy_(_median_off_diagonal(sq_dists(z, z)).log())

    def matrix(self, z: Tensor) -> Tensor:
        f = self.phi(z)
        eps = torch.sigmoid(self.eps_logit)
        kappa = torch.exp(-sq_dists(f, f) / self.log_bw_phi.exp())
        q = torch.exp(-sq_dists(z, z) / self.log_bw_q.exp())
        return ((1 - eps) * kappa + eps) * q


Kernel = GaussianKernel | DeepKernel


def mmd2_unbiased(k: Tensor, n: int) -> Tensor:
    """MMD²_u of a pooled kernel matrix whose first ``n`` rows are X."""
    m = len(k) - n
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
            - 2 * kxy.sum() / (n * m))


def power_criterion(k: Tensor, n: int) -> Tensor:
    """Liu et al.'s test-power criterion MMD²_u / σ̂_H1 for equal sizes
    (the U-statistic of H_ij = k(xi,xj) + k(yi,yj) - k(xi,yj) - k(xj,yi))."""
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    h = kxx + kyy - kxy - kxy.T
    mmd = (h.sum() - h.diagonal().sum()) / (n * (n - 1))
    var = 4 / n**3 * h.sum(1).pow(2).sum() - 4 / n**4 * h.sum().pow(2)
    return mmd / torch.sqrt(var.clamp_min(0) + LAMBDA)


@dataclass(frozen=True, slots=True)
class TestResult:
    """One permutation test: the statistic, its permutation null, the
    p-value and whether it rejects at ``alpha``."""

    stat: float
    null: Tensor
    p_value: float
    reject: bool


def permutation_null(k: Tensor, n: int, permutations: int,
                     generator: torch.Generator | None = None,
                     token: CancelToken | None = None,
                     chunk: int = 50) -> Tensor:
    """MMD²_u of ``permutations`` random relabellings of the pooled sample
    (the first ``n`` as X), all from the one kernel matrix ``k``."""
    total, m = len(k), len(k) - n
    k = k.detach()
    diag = k.diagonal()
    out = []
    for lo in range(0, permutations, chunk):
        if token is not None:
            token.check()
        rows = min(chunk, permutations - lo)
        order = torch.rand(rows, total, generator=generator).argsort(1).to(k.device)
        a = torch.zeros(rows, total, dtype=k.dtype, device=k.device)
        a.scatter_(1, order[:, :n], 1.0)
        b = 1 - a
        ka, kb = a @ k, b @ k
        s_aa = (ka * a).sum(1) - (a * diag).sum(1)
        s_bb = (kb * b).sum(1) - (b * diag).sum(1)
        s_ab = (ka * b).sum(1)
        out.append(s_aa / (n * (n - 1)) + s_bb / (m * (m - 1)) - 2 * s_ab / (n * m))
    return torch.cat(out).cpu()


@torch.no_grad()
def permutation_test(kernel: Kernel, x: Tensor, y: Tensor, *, alpha: float = 0.05,
                     permutations: int = 200,
                     generator: torch.Generator | None = None,
                     token: CancelToken | None = None) -> TestResult:
    """The permutation test of MMD²_u under ``kernel``:
    p = (1 + #{null ≥ stat}) / (1 + permutations), reject when p ≤ alpha."""
    check_alpha(alpha)
    if len(x) < 2 or len(y) < 2:
        raise ParamError(f"each sample needs at least 2 points, got {len(x)} and "
                         f"{len(y)}")
    k = kernel.matrix(torch.cat([x, y]))
    stat = float(mmd2_unbiased(k, len(x)))
    null = permutation_null(k, len(x), permutations, generator, token)
    p = (1 + int((null >= stat).sum())) / (1 + permutations)
    return TestResult(stat, null, p, p <= alpha)


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ParamError(f"alpha must be in (0, 1), got {alpha:g}")


def train_deep_kernel(x: Tensor, y: Tensor, *, epochs: int = 150, lr: float = 1e-3,
                      adversarial: bool = False, eps: float = 0.0,
                      attack_steps: int = 3, seed: int = 0,
                      token: CancelToken | None = None,
                      on_epoch: Callable[[int, float], None] | None = None,
                      ) -> DeepKernel:
    """A :class:`DeepKernel` trained on X and Y (equal sizes) with Adam to
    maximise :func:`power_criterion`. ``adversarial``: each epoch first
    attacks Y against the current kernel (:func:`attack_second_sample`,
    ``attack_steps`` steps within ``eps``) and maximises the criterion on
    the attacked pair instead (MMD-RoD)."""
    if len(x) != len(y) or len(x) < 2:
        raise ParamError(f"training a deep kernel needs two samples of the same "
                         f"size, at least 2 each; got {len(x)} and {len(y)}")
    with torch.random.fork_rng(devices=[]):  # the caller's generator untouched
        torch.manual_seed(seed)
        kernel = DeepKernel(x.shape[1:]).to(x.device)
    kernel.init_bandwidths(torch.cat([x, y]))
    opt = torch.optim.Adam(kernel.parameters(), lr=lr)
    n = len(x)
    for epoch in range(epochs):
        if token is not None:
            token.check()
        y_fit = y
        if adversarial and eps > 0:
            y_fit = attack_second_sample([kernel], x, y, eps=eps, steps=attack_steps,
                                         seed=seed + epoch, random_start=True)
        loss = -power_criterion(kernel.matrix(torch.cat([x, y_fit])), n)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_epoch is not None:
            on_epoch(epoch, -float(loss.detach()))
    kernel.eval()
    return kernel


def attack_second_sample(kernels: Sequence[Kernel], x: Tensor, y: Tensor, *,
                         eps: float, steps: int = 20, step_size: float | None = None,
                         seed: int = 0, random_start: bool = False,
                         token: CancelToken | None = None) -> Tensor:
    """Y' in the l-inf ball of radius ``eps`` around ``y`` (and in [0, 1]) that
    makes the tests of ``kernels`` jointly fail to reject: PGD (signed
    gradient, ``step_size`` default 2.5·eps/steps) on the tests' criteria
    jointly: each step follows the sum of the gradients of
    power_criterion(X, Y') of the tests still above 0, each rescaled to mean
    magnitude 1, so every test still rejecting pulls as hard as the others
    and a fooled one stops pulling."""
    if eps < 0:
        raise ParamError(f"eps must be at least 0, got {eps:g}")
    if steps < 0:
        raise ParamError(f"steps must be at least 0, got {steps}")
    y = y.detach()
    if eps == 0 or steps == 0 or not kernels:
        return y.clone()
    x = x.detach()
    n = len(x)
    params = [p for k in kernels if isinstance(k, nn.Module) for p in k.parameters()]
    frozen = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        step = step_size if step_size is not None else 2.5 * eps / steps
        y_adv = y.clone()
        if random_start:
            g = torch.Generator().manual_seed(seed)
            noise = (torch.rand(y.shape, generator=g) * 2 - 1).to(y) * eps
            y_adv = (y + noise).clamp(0, 1)
        for _ in range(steps):
            if token is not None:
                token.check()
            y_adv.requires_grad_(True)
            grad = torch.zeros_like(y)
            for k in kernels:
                # a test at or below 0 no longer pulls; each one still
                # rejecting pulls as hard as the others (its gradient
                # rescaled to mean magnitude 1), whatever its kernel's scale
                c = power_criterion(k.matrix(torch.cat([x, y_adv])), n)
                if float(c.detach()) <= 0:
                    continue
                (g,) = torch.autograd.grad(c, y_adv)
                grad += g / g.abs().mean().clamp_min(1e-12)
            if not bool(grad.any()):  # every test is at or below 0
                break
            with torch.no_grad():
                y_adv = y_adv - step * grad.sign()
                y_adv = torch.min(torch.max(y_adv, y - eps), y + eps).clamp(0, 1)
        return y_adv.detach()
    finally:
        for p, was in zip(params, frozen, strict=True):
            p.requires_grad_(was)
