"""Denoiser Lab jobs: ObsAtk live, PSNR-vs-rho curves, classifier accuracy.

All are generators of :mod:`explorer.core.jobs` events ending in ``Done``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core.denoise import metrics, noise
from explorer.core.denoise.evaluation import denoise_dataset
from explorer.core.denoise.files import check_input
from explorer.core.denoise.obsatk import (
    ObsAtk,
    check_budget,
    pass_through_gain,
    project,
    random_baseline,
    resolve_rho,
)
from explorer.core.device import device_of
from explorer.core.inference import make_generator, model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Metric, Progress, Snapshot
from explorer.core.models import ModelError, check_compatible
from explorer.core.params import ParamError


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def obsatk_live(denoiser: nn.Module, x: Tensor, *, kind: str = "gaussian",
                level: float = 0.1, rho: float | None = None, steps: int = 20,
                seed: int = 0, every: int = 1,
                token: CancelToken | None = None) -> Iterator[Event]:
    """ObsAtk on one batch of clean images, a ``Snapshot`` every ``every`` steps.

    Snapshot arrays: ``v_adv`` (perturbed observation), ``delta``,
    ``denoised`` (f(v_adv)), ``loss`` (per-image ||f(v_adv) - x||^2) and
    ``psnr``; the first carries ``noisy`` and ``clean`` too. ``Done`` holds the
    best iterate's scores per image, and ``gain_attacked`` / ``gain_random``:
    the pass-through gain along ObsAtk's direction and a random zero-mean one.
    ``rho`` defaults to RMS 4/255 of the images' size.
    """
    token = token or CancelToken()
    rho = resolve_rho(rho, tuple(x.shape[1:]))
    check_budget(rho, steps)
    check_input(denoiser, x)
    gen = make_generator(seed, x.device)
    v = noise.apply(x, kind, level, gen)
    attack = ObsAtk(rho, steps)
    last = None
    for it in attack.run(denoiser, v, x, gen, live=True):
        token.check()
        last = it
        if it.step % every and it.step < steps:
            continue
        with torch.no_grad():
            out = denoiser(it.v_adv)
        arrays = {"v_adv": _np(it.v_adv), "delta": _np(it.delta),
                  "denoised": _np(out), "loss": _np(it.loss),
                  "psnr": metrics.psnr(x, out)}
        if it.step == 0:
            arrays.update(noisy=_np(v), clean=_np(x))
        label = "best" if it.step > steps else f"step {it.step}/{steps}"
        yield Snapshot(min(it.step, steps), steps, arrays, label)
    with torch.no_grad():
        plain, attacked = denoiser(v), denoiser(last.v_adv)
    # how much of ObsAtk's direction, and of a random one, reaches the output
    gain_attacked = pass_through_gain(denoiser, v, last.delta)
    gain_random = pass_through_gain(
        denoiser, v, random_baseline(tuple(v.shape), 1.0, gen, v.device))
    yield Done({"psnr_noisy": metrics.psnr(x, v).tolist(),
                "psnr_denoised": metrics.psnr(x, plain).tolist(),
                "psnr_attacked": metrics.psnr(x, attacked).tolist(),
                "ssim_denoised": metrics.ssim(x, plain).tolist(),
                "ssim_attacked": metrics.ssim(x, attacked).tolist(),
                "gain_attacked": gain_attacked.tolist(),
                "gain_random": gain_random.tolist(),
                "rho": rho, "steps": steps})


def psnr_vs_rho(denoisers: Mapping[str, nn.Module], dataset, rhos: Sequence[float],
                *, kind: str = "gaussian", level: float = 0.1, steps: int = 20,
                n: int = 200, baseline: bool = True, seed: int = 0,
                token: CancelToken | None = None) -> Iterator[Event]:
    """Mean PSNR under ObsAtk (and the random baseline) per denoiser and rho.

    Metrics are named ``psnr/<denoiser>`` and ``psnr_random/<denoiser>`` with
    ``step`` the index into ``rhos``; ``Done`` holds the curves.
    """
    token = token or CancelToken()
    for rho in rhos:
        check_budget(float(rho), steps)
    attacks = ("obsatk", "random") if baseline else ("obsatk",)
    curves: dict[str, list[float]] = {}
    total, done = len(denoisers) * len(rhos) * len(attacks), 0
    for name, model in denoisers.items():
        for i, rho in enumerate(rhos):
            for attack in attacks:
                res: dict = {}
                for event in denoise_dataset(model, dataset, kind=kind, level=level,
                                             attack=attack if rho > 0 else "none",
                                             rho=float(rho), steps=steps, n=n,
                                             seed=seed, token=token):
                    if isinstance(event, Done):
                        res = event.results
                key = f"{'psnr' if attack == 'obsatk' else 'psnr_random'}/{name}"
                value = res.get("psnr_attacked", res["psnr_denoised"])
                curves.setdefault(key, []).append(value)
                yield Metric(key, value, i)
                done += 1
                yield Progress(done, total, f"{name} rho {rho:g}")
    yield Done({"rhos": [float(r) for r in rhos], "curves": curves})


@torch.enable_grad()
def adaptive_through_denoiser(classifier: nn.Module, denoiser: nn.Module, v: Tensor,
                              y: Tensor, rho: float, steps: int) -> Tensor:
    """Zero-mean l2 perturbation of v maximising the classifier's loss on
    f(v + d): the attack sees the whole pipeline, denoiser included.

    Per image it keeps the first iterate (d = 0 included) the classifier gets
    wrong, else the last: an attack reports its worst case, so the accuracy
    after it never exceeds the accuracy on the denoised input."""
    alpha = 2.5 * rho / steps
    d = torch.zeros_like(v)
    best, fooled = d, torch.zeros(len(v), dtype=torch.bool, device=v.device)
    with model_frozen(classifier), model_frozen(denoiser):
        for step in range(steps + 1):
            d_in = d.detach().requires_grad_(True)
            logits = classifier(denoiser(v + d_in).clamp(0, 1))
            new = (logits.argmax(1) != y) & ~fooled
            best = torch.where(new.view(-1, *[1] * (v.dim() - 1)), d, best)
            fooled = fooled | new
            if step == steps or bool(fooled.all()):
                break
            loss = nn.functional.cross_entropy(logits, y, reduction="sum")
            (g,) = torch.autograd.grad(loss, d_in)
            g = g.flatten(1)
            g = g - g.mean(dim=1, keepdim=True)
            g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
            d = project(d + alpha * g.view_as(d), rho)
    return torch.where(fooled.view(-1, *[1] * (v.dim() - 1)), best, d).detach()


CLASSIFIER_KEYS = ("clean", "noisy", "denoised", "obsatk", "adaptive")


def check_classifier(classifier: nn.Module, info) -> None:
    """A classification model taking ``info``'s images and classes, or a
    ModelError saying what does not fit."""
    num_classes = getattr(getattr(classifier, "meta", None), "num_classes", 0)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError("classifier: expected a classification model")
    if info is None:
        return
    try:
        check_compatible(classifier, info)
    except ModelError as exc:
        raise ModelError(f"the classifier does not fit the data: {exc}") from None


def classifier_accuracy(classifier: nn.Module, denoiser: nn.Module, dataset, *,
                        kind: str = "gaussian", level: float = 0.1,
                        rho: float = 0.44, steps: int = 20, n: int = 200,
                        batch_size: int = 100, seed: int = 0, device=None,
                        token: CancelToken | None = None) -> Iterator[Event]:
    """The denoiser as a pre-processing defense for a classifier.

    Accuracy on clean, noisy and denoised inputs; after ObsAtk (which targets
    the reconstruction, not the classifier); and after an adaptive attack of
    the same budget through the denoiser (which targets the classifier's loss
    on the denoised image, so the defense no longer hides the gradient).
    Both models must already be on ``device`` (default: the classifier's);
    the images are moved there.

    Events: ``Progress`` per batch, then ``Metric("acc_<key>", value)`` for
    each of :data:`CLASSIFIER_KEYS`. ``Done``: ``acc_clean``, ``acc_noisy``,
    ``acc_denoised``, ``acc_obsatk``, ``acc_adaptive``, ``n``, ``rho``,
    ``steps``, ``noise``, ``level``, ``seed``.
    """
    token = token or CancelToken()
    check_budget(rho, steps)
    noise.check(kind, level)
    if n < 1:
        raise ParamError(f"n must be at least 1, got {n}")
    check_classifier(classifier, getattr(dataset, "info", None))
    dev = device_of(classifier, device)
    n = min(int(n), len(dataset))
    correct = dict.fromkeys(CLASSIFIER_KEYS, 0)
    batches = math.ceil(n / batch_size)
    for b in range(batches):
        token.check()
        x, y = dataset.as_tensors(b * batch_size, min(n, (b + 1) * batch_size))
        x, y = x.to(dev, torch.float32), y.to(dev)
        check_input(denoiser, x)
        gen = make_generator(seed + b, x.device)
        v = noise.apply(x, kind, level, gen)
        d_obs = ObsAtk(rho, steps)(denoiser, v, x, gen)
        d_ada = adaptive_through_denoiser(classifier, denoiser, v, y, rho, steps)
        with torch.no_grad(), model_frozen(classifier), model_frozen(denoiser):
            inputs = {"clean": x, "noisy": v.clamp(0, 1),
                      "denoised": denoiser(v).clamp(0, 1),
                      "obsatk": denoiser(v + d_obs).clamp(0, 1),
                      "adaptive": denoiser(v + d_ada).clamp(0, 1)}
            for key, inp in inputs.items():
                correct[key] += int((classifier(inp).argmax(1) == y).sum())
        yield Progress(b + 1, batches, "classifier accuracy")
    results = {f"acc_{key}": correct[key] / n for key in CLASSIFIER_KEYS}
    for name, value in results.items():
        yield Metric(name, value)
    results.update(n=n, rho=rho, steps=steps, noise=kind, level=level, seed=seed)
    yield Done(results)
