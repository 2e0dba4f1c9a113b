"""Random corruptions: the baselines that show adversarial noise is not noise.

Uniform noise with the same l-inf budget as PGD barely moves a model that PGD
breaks; that contrast is the point of these "attacks". They use no gradients
(only the worst-of-k rotation looks at the model's outputs, to pick an angle),
draw all randomness from the attack's generator and clip to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.nn import functional as F

from explorer.core.attacks import draws
from explorer.core.attacks.base import Attack, AttackStep
from explorer.core.params import Param, ParamError


class _Corruption(Attack):
    kind = "corruption"
    targeted_ok = False

    def _corrupt(self, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def _steps(self, x, y, target, generator, live) -> Iterator[AttackStep]:
        x_adv = self._corrupt(x, y, generator).clamp(0, 1)
        # One forward pass tells the viewer what the corruption did.
        yield AttackStep(1, 1, x_adv, *self.evaluate(x_adv, y, None), None)


def _rand(x: Tensor, generator: draws.Draws, shape=None) -> Tensor:
    return draws.rand(x.shape if shape is None else shape, generator,
                      device=x.device, dtype=x.dtype)


class GaussianNoise(_Corruption):
    name = "gaussian-noise"
    title = "Gaussian noise"
    description = ("Adds independent Gaussian noise of standard deviation sigma "
                   "to every pixel.")
    params = (Param("sigma", float, 0.1, "standard deviation (pixel units)",
                    minimum=0.0, maximum=10.0, unit="px"),)

    def _corrupt(self, x, y, generator):
        noise = draws.randn(x.shape, generator, device=x.device, dtype=x.dtype)
        return x + self.cfg["sigma"] * noise


class UniformNoise(_Corruption):
    name = "uniform-noise"
    title = "Uniform noise"
    description = ("Adds noise drawn uniformly from [-eps, eps]: random, and with "
                   "the same l-inf budget as an attack.")
    params = (Param("eps", float, 0.1, "noise bound (pixel units)", minimum=0.0,
                    maximum=1.0, unit="px"),)

    def budget(self) -> tuple[str, float]:
        return "linf", self.cfg["eps"]

    def _corrupt(self, x, y, generator):
        return x + self.cfg["eps"] * (2 * _rand(x, generator) - 1)


class SaltPepper(_Corruption):
    name = "salt-pepper"
    title = "Salt-and-pepper noise"
    description = "Sets a random share of the pixels to black or white."
    params = (Param("amount", float, 0.05, "share of pixels set to 0 or 1",
                    minimum=0.0, maximum=1.0),)

    def _corrupt(self, x, y, generator):
        # A pixel is all its channels: salt is white, pepper is black.
        shape = (x.shape[0], 1, *x.shape[2:]) if x.dim() == 4 else x.shape
        hit = _rand(x, generator, shape) < self.cfg["amount"]
        salt = (_rand(x, generator, shape) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)


def rotate(x: Tensor, degrees: Tensor) -> Tensor:
    """Rotate each image of ``x`` (N×C×H×W) counter-clockwise by its angle,
    bilinear, about the centre, filling uncovered corners with 0."""
    n, _, h, w = x.shape
    a = degrees.to(x.dtype) * (math.pi / 180)
    cos, sin = a.cos(), a.sin()
    zero = torch.zeros_like(a)
    # affine_grid maps output to input in coordinates normalised per axis;
    # the h/w factors keep the rotation rigid in pixel space.
    theta = torch.stack([torch.stack([cos, -sin * h / w, zero], 1),
                         torch.stack([sin * w / h, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


class Rotation(_Corruption):
    name = "rotation"
    title = "Rotation"
    description = ("Rotates each image by a random angle up to ±degrees; with "
                   "worst_of = k it keeps the worst of k random angles (Engstrom "
                   "et al.).")
    params = (
        Param("degrees", float, 15.0, "largest rotation angle", minimum=0.0,
              maximum=180.0),
        Param("random_angle", bool, True, "draw each angle uniformly in "
              "[-degrees, degrees]; off: rotate every image by exactly degrees"),
        Param("worst_of", int, 1, "random angles tried per image; the one that "
              "fools the model, else raises its loss most, is kept",
              minimum=1, maximum=100),
    )  # fmt: skip

    def _check(self) -> None:
        if self.cfg["worst_of"] > 1 and not self.cfg["random_angle"]:
            raise ParamError("worst_of must be 1 when random_angle is off "
                             "(every try would use the same angle)")

    def _corrupt(self, x, y, generator):
        if x.dim() != 4:
            raise ParamError(f"rotation needs image batches N×C×H×W, got shape "
                             f"{tuple(x.shape)}")
        c = self.cfg
        n, k = x.shape[0], c["worst_of"]
        if not c["random_angle"]:
            return rotate(x, torch.full((n,), c["degrees"], device=x.device))
        # per image, each image draws its k angles (rows are images there)
        u = (_rand(x, generator, (n, k)).T if draws.per_image(generator)
             else _rand(x, generator, (k, n)))
        angles = (2 * u - 1) * c["degrees"]
        if k == 1:
            return rotate(x, angles[0])
        tries = rotate(x.repeat(k, 1, 1, 1), angles.flatten()).view(k, *x.shape)
        _, loss, success = self.evaluate(tries.flatten(0, 1), y.repeat(k), None)
        # Fooling beats any loss: rank by success first, then by loss.
        score = torch.where(success, loss + 2 * loss.abs().max() + 1, loss).view(k, n)
        pick = score.argmax(0)
        return tries[pick, torch.arange(n, device=x.device)]
