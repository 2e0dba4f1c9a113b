"""Training for randomized smoothing: Gaussian noise augmentation (Cohen,
Rosenfeld & Kolter 2019) and SmoothAdv (Salman et al. 2019).

A smoothed classifier is only as good as its base classifier under noise:
a network trained on clean images labels x + N(0, σ²) almost at random.
Cohen et al. train on noisy copies, x + σ·ε, with the σ they certify at
(noise added without clipping to [0, 1], as in their code). SmoothAdv
attacks the smoothed soft classifier first: PGD-l2 within ``eps`` of x
maximises -log((1/m) Σ_i softmax(f(x' + δ_i))_y) with m noise draws δ_i
fixed for the batch, then trains on the m noisy copies of x'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.attacks import L2Ball
from explorer.core.defenses.base import Defense
from explorer.core.inference import model_frozen
from explorer.core.params import Param, ParamError

SIGMA = Param("sigma", float, 0.25, "std of the Gaussian noise added to each "
              "training image (pixel units; certify with the same σ)",
              minimum=0.0, maximum=10.0)


def gaussian_noise(x: Tensor, sigma: float, generator: torch.Generator,
                   copies: int | None = None) -> Tensor:
    """σ·ε with ε ~ N(0, I) shaped like ``x`` (or ``copies`` × x's shape)."""
    shape = x.shape if copies is None else (copies, *x.shape)
    return sigma * torch.randn(shape, generator=generator, device=x.device,
                               dtype=x.dtype)


class _NoiseDefense(Defense):
    def _check(self) -> None:
        # not Defense's check: SmoothAdv's eps is an l2 budget, beyond 1 allowed
        if self.cfg["sigma"] <= 0:
            raise ParamError(f"sigma must be positive (the noise std), got "
                             f"{self.cfg['sigma']:g}")


class GaussianAugmentation(_NoiseDefense):
    name = "gaussian"
    title = "Gaussian noise augmentation (for randomized smoothing)"
    params = (SIGMA,)
    description = ("Cohen et al. 2019: cross-entropy on x + N(0, σ²) noise, the "
                   "base classifier of a smoothed model certified at the same σ "
                   "(Certify & Detect page, `explorer certify`).")

    def loss(self, model, x, y, generator):
        logits = model(x + gaussian_noise(x, self.cfg["sigma"], generator))
        return F.cross_entropy(logits, y), logits


def _mean_over_noise(model: nn.Module, x: Tensor, noise: Tensor) -> Tensor:
    """Logits of the m noisy copies x + δ_i, shaped m × B × classes."""
    m, b = noise.shape[:2]
    return model((x.unsqueeze(0) + noise).flatten(0, 1)).view(m, b, -1)


class SmoothAdv(_NoiseDefense):
    name = "smoothadv"
    attack_steps = "steps"
    title = "SmoothAdv (adversarial training of the smoothed classifier)"
    params = (
        SIGMA,
        Param("eps", float, 0.25, "l2 budget of the attack on the smoothed "
              "classifier (pixel units)", minimum=0.0, maximum=100.0),
        Param("steps", int, 2, "PGD-l2 steps", minimum=1, maximum=1000),
        Param("m", int, 2, "noise draws per image", minimum=1, maximum=64),
    )  # fmt: skip
    description = ("Salman et al. 2019: PGD-l2 within eps on the smoothed soft "
                   "classifier (m noise draws, fixed per batch), then "
                   "cross-entropy on the m noisy copies of the attacked image.")

    @torch.enable_grad()
    def adversarial(self, model: nn.Module, x: Tensor, y: Tensor,
                    noise: Tensor) -> Tensor:
        c = self.cfg
        if c["eps"] == 0:
            return x.detach()
        ball = L2Ball(c["eps"])
        alpha = 2 * c["eps"] / c["steps"]  # Salman et al.'s step size
        x0 = x.detach()
        x_adv = x0.clone()
        with model_frozen(model):
            for _ in range(c["steps"]):
                x_adv.requires_grad_(True)
                probs = F.softmax(_mean_over_noise(model, x_adv, noise), -1).mean(0)
                loss = F.nll_loss(probs.clamp_min(1e-12).log(), y)
                (grad,) = torch.autograd.grad(loss, x_adv)
                x_adv = ball.project(ball.step(x_adv.detach(), grad, alpha), x0)
        return x_adv.detach()

    def loss(self, model, x, y, generator):
        c = self.cfg
        noise = gaussian_noise(x, c["sigma"], generator, copies=c["m"])
        x_adv = self.adversarial(model, x, y, noise)
        logits = _mean_over_noise(model, x_adv, noise)
        loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(c["m"]))
        return loss, logits.mean(0)
