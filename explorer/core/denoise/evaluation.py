"""Measuring a denoiser: noisy vs denoised vs attacked, PSNR and SSIM per image.

``evaluate_batch`` works on one batch of clean images (pixels in [0, 1]):
it draws the noise (seeded), denoises, and optionally perturbs the
observations with ObsAtk or the random zero-mean baseline of the same norm.
``denoise_dataset`` is the job over the first ``n`` images of a data set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core.denoise import metrics, noise
from explorer.core.denoise.files import check_input
from explorer.core.denoise.obsatk import (
    ObsAtk,
    check_budget,
    random_baseline,
    resolve_rho,
)
from explorer.core.inference import make_generator
from explorer.core.jobs import CancelToken, Done, Event, Progress
from explorer.core.params import ParamError

ATTACKS = ("none", "obsatk", "random")


def check_attack(attack: str) -> None:
    if attack not in ATTACKS:
        raise ParamError(f"attack must be one of {', '.join(ATTACKS)}, "
                         f"got {attack!r}")


def perturbation(denoiser: nn.Module, v: Tensor, x: Tensor, attack: str, rho: float,
                 steps: int, generator: torch.Generator | None) -> Tensor | None:
    """ObsAtk's or the random baseline's perturbation (``None`` for "none")."""
    check_attack(attack)
    if attack == "none":
        return None
    if attack == "random":
        return random_baseline(tuple(v.shape), rho, generator, v.device)
    return ObsAtk(rho, steps)(denoiser, v, x, generator)


@torch.no_grad()
def _denoise(denoiser: nn.Module, v: Tensor) -> Tensor:
    return denoiser(v)


def evaluate_batch(denoiser: nn.Module, x: Tensor, kind: str = "gaussian",
                   level: float = 0.1, *, attack: str = "obsatk",
                   rho: float | None = None, steps: int = 20, seed: int = 0,
                   device=None, per_image: bool = False) -> dict[str, Any]:
    """Averaged PSNR/SSIM (per-image arrays too with ``per_image``); ``rho``
    defaults to RMS 4/255 of the images' size."""
    check_attack(attack)
    rho = resolve_rho(rho, tuple(x.shape[1:]))
    check_budget(rho, steps)
    device = torch.device(device) if device is not None else x.device
    was_training = denoiser.training
    denoiser.eval()
    try:
        x = x.to(device).float()
        check_input(denoiser, x)
        gen = make_generator(seed, device)
        v = noise.apply(x, kind, level, gen)
        out = {"psnr_noisy": metrics.psnr(x, v), "psnr_denoised": None,
               "ssim_denoised": None}
        denoised = _denoise(denoiser, v)
        out["psnr_denoised"] = metrics.psnr(x, denoised)
        out["ssim_denoised"] = metrics.ssim(x, denoised)
        d = perturbation(denoiser, v, x, attack, rho, steps, gen)
        if d is not None:
            attacked = _denoise(denoiser, v + d)
            out["psnr_attacked"] = metrics.psnr(x, attacked)
            out["ssim_attacked"] = metrics.ssim(x, attacked)
            flat = d.flatten(1)
            out["abs_mean"] = flat.mean(1).abs().cpu().numpy()
            out["l2"] = flat.norm(dim=1).cpu().numpy()
    finally:
        denoiser.train(was_training)
    if per_image:
        return out
    return summarise(out)


def summarise(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """Means of the per-image scores; the perturbation's worst mean and norm."""
    out: dict[str, float] = {}
    for key, values in per_image.items():
        if key == "abs_mean":
            out["max_abs_mean"] = float(np.max(values))
        elif key == "l2":
            out["max_l2"] = float(np.max(values))
        else:
            finite = np.minimum(values, 100.0)  # identical images: PSNR inf → 100 dB
            out[key] = float(np.mean(finite))
    return out


def denoise_dataset(denoiser: nn.Module, dataset, *, kind: str = "gaussian",
                    level: float = 0.1, attack: str = "none",
                    rho: float | None = None, steps: int = 20, n: int = 200,
                    batch_size: int = 100, seed: int = 0, device=None,
                    token: CancelToken | None = None) -> Iterator[Event]:
    """The first ``n`` images of ``dataset``, in order: averaged scores
    (``rho`` defaults to RMS 4/255 of the images' size)."""
    token = token or CancelToken()
    check_attack(attack)
    noise.check(kind, level)
    n = min(int(n), len(dataset))
    if n < 1:
        raise ParamError(f"n must be at least 1, got {n}")
    rho = resolve_rho(rho, tuple(dataset.as_tensors(0, 1)[0].shape[1:]))
    check_budget(rho, steps)
    parts: dict[str, list[np.ndarray]] = {}
    batches = math.ceil(n / batch_size)
    for b in range(batches):
        token.check()
        x, _ = dataset.as_tensors(b * batch_size, min(n, (b + 1) * batch_size))
        scores = evaluate_batch(denoiser, x, kind, level, attack=attack, rho=rho,
                                steps=steps, seed=seed + b, device=device,
                                per_image=True)
        for key, values in scores.items():
            parts.setdefault(key, []).append(values)
        yield Progress(b + 1, batches, "denoising")
    results: dict[str, Any] = summarise(
        {key: np.concatenate(values) for key, values in parts.items()})
    results.update(n=n, noise=kind, level=level, attack=attack, rho=rho, steps=steps)
    yield Done(results)
