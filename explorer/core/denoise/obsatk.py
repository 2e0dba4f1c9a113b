"""ObsAtk: the observation-based zero-mean attack on a denoiser (Yan et al.).

Given a noisy observation v of a clean image x, find d with zero mean per
image and ``||d||_2 <= rho`` that maximises ``||f(v + d) - x||^2``. The feasible
set is the intersection of a linear subspace (zero mean) and a ball centred
at the origin, which lies in that subspace; projecting onto the subspace and
then into the ball is therefore the exact projection onto the intersection.
Steps are normalised-gradient (l2) ascent steps, projected after every step.
The budget is also shown as the RMS per pixel, ``rho / sqrt(C*H*W)``; the
default budget is RMS 4/255 whatever the image size (:func:`default_rho`:
rho 0.44 on 28×28, 0.63 on 40×40, 2.0 on a 128×128 photo).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from explorer.core.inference import model_frozen
from explorer.core.params import Param, ParamError

_TINY = 1e-12
DEFAULT_RMS = 4 / 255  # ObsAtk's default budget per pixel, for any image size
# for forms; rho is an l2 norm, shown beside it as RMS per pixel (rho_to_rms)
PARAMS = (
    Param("rho", float, 0.44, "l2 norm of the zero-mean perturbation (0.44 = "
          "RMS 4/255 on 28×28; see default_rho)", 0.0, 100.0),
    Param("steps", int, 20, "projected gradient steps", 1, 1000),
)


def project(d: Tensor, rho: float) -> Tensor:
    """Exact projection onto {zero mean per image} ∩ {l2 norm <= rho}."""
    flat = d.flatten(1)
    flat = flat - flat.mean(dim=1, keepdim=True)
    norms = flat.norm(dim=1, keepdim=True)
    flat = flat * torch.clamp(rho / norms.clamp_min(_TINY), max=1.0)
    return flat.view_as(d)


def rms_to_rho(rms: float, shape: tuple[int, ...]) -> float:
    """The l2 budget of a per-pixel RMS budget on C×H×W images (k/255 → rho)."""
    return float(rms) * math.sqrt(math.prod(shape))


def rho_to_rms(rho: float, shape: tuple[int, ...]) -> float:
    return float(rho) / math.sqrt(math.prod(shape))


def default_rho(shape: tuple[int, ...]) -> float:
    """ObsAtk's default l2 budget for C×H×W images: RMS 4/255 per pixel."""
    return rms_to_rho(DEFAULT_RMS, shape)


def resolve_rho(rho: float | None, shape: tuple[int, ...]) -> float:
    """``rho``, or the default budget (RMS 4/255) of ``shape`` when ``None``."""
    return default_rho(shape) if rho is None else float(rho)


def check_budget(rho: float, steps: int) -> None:
    if not math.isfinite(rho) or rho < 0:
        raise ParamError(f"rho must be a finite number >= 0 (the l2 norm of the "
                         f"perturbation), got {rho:g}")
    if steps < 1:
        raise ParamError(f"steps must be at least 1, got {steps}")


def random_baseline(shape: tuple[int, ...], rho: float,
                    generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> Tensor:
    """A random zero-mean perturbation with l2 norm exactly ``rho`` per image."""
    check_budget(rho, 1)
    d = torch.randn(shape, generator=generator, device=device)
    flat = d.flatten(1)
    flat = flat - flat.mean(dim=1, keepdim=True)
    flat = flat * (rho / flat.norm(dim=1, keepdim=True).clamp_min(_TINY))
    return flat.view(shape)


def reconstruction_error(denoiser: nn.Module, v: Tensor, x: Tensor) -> Tensor:
    """``||f(v) - x||^2`` per image."""
    return (denoiser(v) - x).flatten(1).pow(2).sum(dim=1)


@torch.no_grad()
def pass_through_gain(denoiser: nn.Module, v: Tensor, d: Tensor,
                      t: float = 1e-3) -> Tensor:
    """Per image, how much of a small perturbation along ``d`` reaches the
    output: ``||f(v + t·u) - f(v)|| / t`` with ``u = d / ||d||``.

    Near 1, the denoiser passes the direction through as if it were image
    content; a random zero-mean direction is mostly removed (about 0.4 for
    the built-in DnCNNs). ObsAtk finds directions of gain about 1, so its
    damage is roughly its own norm added along the denoiser's error.
    """
    unit = d / d.flatten(1).norm(dim=1).clamp_min(_TINY).view(-1, *[1] * (d.dim() - 1))
    with model_frozen(denoiser):
        moved = denoiser(v + t * unit) - denoiser(v)
    return moved.flatten(1).norm(dim=1) / t


@dataclass
class ObsAtkStep:
    """One iterate: ``delta`` the perturbation, ``v_adv = v + delta``,
    ``loss`` the per-image reconstruction error at ``v_adv`` (``None`` on the
    fast path's intermediate steps)."""

    step: int
    total: int
    delta: Tensor
    v_adv: Tensor
    loss: Tensor | None


def _ascent_step(d: Tensor, d_in: Tensor, loss: Tensor, rho: float,
                 alpha: float) -> Tensor:
    (grad,) = torch.autograd.grad(loss.sum(), d_in)
    g = grad.flatten(1)
    g = g - g.mean(dim=1, keepdim=True)  # the ascent direction in the subspace
    g = g / g.norm(dim=1, keepdim=True).clamp_min(_TINY)
    return project(d + alpha * g.view_as(d), rho)


@torch.enable_grad()
def _ascent(denoiser, v, x, rho, steps, alpha, start, live):
    d, best_d, best_loss = start, start, None
    for step in range(steps + 1):
        d_in = d.detach().requires_grad_(step < steps)
        loss = reconstruction_error(denoiser, v + d_in, x)
        value = loss.detach()
        if best_loss is None:
            best_loss = value
        else:
            better = value > best_loss
            best_loss = torch.where(better, value, best_loss)
            best_d = torch.where(better.view(-1, *[1] * (d.dim() - 1)), d, best_d)
        if live:
            yield ObsAtkStep(step, steps, d, v + d, value)
        if step < steps:
            d = _ascent_step(d, d_in, loss, rho, alpha)
    yield ObsAtkStep(steps + 1, steps, best_d, v + best_d, best_loss)


class ObsAtk:
    """``ObsAtk(rho, steps, alpha=None, random_start=False)``.

    ``alpha`` defaults to ``2.5 * rho / steps`` (Madry et al.'s rule). With
    ``live`` every iterate is reported; the last event (``step == total + 1``,
    always sent) carries, per image, the iterate with the largest error.
    """

    def __init__(self, rho: float, steps: int = 20, alpha: float | None = None,
                 random_start: bool = False) -> None:
        check_budget(float(rho), int(steps))
        self.rho, self.steps = float(rho), int(steps)
        self.alpha = float(alpha) if alpha is not None else 2.5 * self.rho / self.steps
        if not self.alpha > 0 and self.rho > 0:
            raise ParamError(f"alpha must be > 0, got {self.alpha:g}")
        self.random_start = bool(random_start)

    def _start(self, v: Tensor, generator: torch.Generator | None) -> Tensor:
        if not self.random_start:
            return torch.zeros_like(v)
        d = random_baseline(tuple(v.shape), self.rho, generator, v.device)
        u = torch.rand(v.shape[0], generator=generator, device=v.device)
        return d * u.view(-1, *[1] * (v.dim() - 1))

    def run(self, denoiser: nn.Module, v: Tensor, x: Tensor,
            generator: torch.Generator | None = None,
            live: bool = True) -> Iterator[ObsAtkStep]:
        """Per-step iterates (the denoiser frozen in eval mode meanwhile)."""
        if v.shape != x.shape:
            raise ParamError(f"observation {tuple(v.shape)} and clean image "
                             f"{tuple(x.shape)} differ in size")
        with model_frozen(denoiser):
            yield from _ascent(denoiser, v.detach(), x.detach(), self.rho,
                               self.steps, self.alpha, self._start(v, generator),
                               live)

    def __call__(self, denoiser: nn.Module, v: Tensor, x: Tensor,
                 generator: torch.Generator | None = None) -> Tensor:
        """The perturbation with the largest error found, per image."""
        last = None
        for last in self.run(denoiser, v, x, generator, live=False):  # noqa: B007
            pass
        return last.delta

    def last_iterate(self, denoiser: nn.Module, v: Tensor, x: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
        """The final iterate without evaluating it (for training: ``steps``
        forward-backward passes, no extra forward)."""
        with model_frozen(denoiser), torch.enable_grad():
            d = self._start(v, generator)
            v, x = v.detach(), x.detach()
            for _ in range(self.steps):
                d_in = d.detach().requires_grad_(True)
                loss = reconstruction_error(denoiser, v + d_in, x)
                d = _ascent_step(d, d_in, loss, self.rho, self.alpha)
        return d.detach()
