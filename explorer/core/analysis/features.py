"""Penultimate features of clean and adversarial images, projected to 2-D.

PCA is exact (SVD of the centred features). t-SNE (van der Maaten & Hinton,
2008) is the exact O(N²) algorithm, fine for up to a few thousand points:
Gaussian affinities whose bandwidths match the perplexity (bisection per
point), symmetrised; Student-t similarities in 2-D; gradient descent with
momentum, per-coordinate gains and early exaggeration. Clean and adversarial
features are embedded together, so arrows from one to the other mean
something. For MMC models the class centres are projected with them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.analysis.result_files import RESULT
from explorer.core.device import device_of
from explorer.core.inference import model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Progress
from explorer.core.jobs import Snapshot as SnapshotEvent
from explorer.core.params import ParamError

METHODS = ("pca", "tsne")
TSNE_MAX_POINTS = 4000


@torch.inference_mode()
def penultimate_features(model: nn.Module, x: Tensor,
                         batch_size: int = 500) -> Tensor:
    """``model.features`` of ``x`` in eval mode, as a CPU float32 tensor."""
    if not callable(getattr(model, "features", None)):
        raise ParamError(f"{type(model).__name__} has no features(); feature views "
                         "need a model built by the app")
    device = device_of(model)
    with model_frozen(model):
        parts = [model.features(x[i:i + batch_size].to(device)).float().cpu()
                 for i in range(0, len(x), batch_size)]
    return torch.cat(parts).flatten(1)


def mmc_centres(model: nn.Module) -> Tensor | None:
    """The Max-Mahalanobis centres of an MMC model (its head's ``weight``):
    a live MMC head, or a saved model whose training method was ``mmc``."""
    head = getattr(model, "head", None)
    meta = getattr(model, "meta", None)
    trained_mmc = meta is not None and meta.training.get("method") == "mmc"
    if head is None or not (type(head).__name__ == "MMCHead" or trained_mmc):
        return None
    weight = getattr(head, "weight", None)
    return None if weight is None else weight.detach().float().cpu()


def pca(points: Tensor, k: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """(mean, components k×D, explained variance ratio k) by exact SVD;
    component signs fixed so the largest coordinate is positive."""
    points = points.double()
    mean = points.mean(0)
    _, s, vh = torch.linalg.svd(points - mean, full_matrices=False)
    comps = vh[:k]
    signs = comps.gather(1, comps.abs().argmax(1, keepdim=True)).sign()
    comps = comps * torch.where(signs == 0, 1.0, signs)
    var = s.square()
    ratio = var[:k] / var.sum().clamp_min(1e-300)
    if len(comps) < k:  # fewer points or dimensions than components
        pad = k - len(comps)
        comps = torch.cat([comps, comps.new_zeros(pad, points.shape[1])])
        ratio = torch.cat([ratio, ratio.new_zeros(pad)])
    return mean.float(), comps.float(), ratio.float()


def _affinities(d2: Tensor, perplexity: float, iters: int = 60) -> Tensor:
    """Row-conditional Gaussian affinities with entropy log(perplexity)."""
    n = len(d2)
    target = np.log(perplexity)
    lo = torch.full((n, 1), -np.inf, dtype=d2.dtype)
    hi = torch.full((n, 1), np.inf, dtype=d2.dtype)
    beta = torch.ones(n, 1, dtype=d2.dtype)
    eye = torch.eye(n, dtype=torch.bool)
    d2 = d2.masked_fill(eye, 0.0)
    for _ in range(iters):
        # Subtracting the row minimum (off-diagonal) keeps exp from underflowing.
        shifted = d2 - d2.masked_fill(eye, np.inf).min(1, keepdim=True).values
        p = torch.exp(-shifted * beta).masked_fill(eye, 0.0)
        total = p.sum(1, keepdim=True)
        p = p / total
        entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(1, keepdim=True)
        too_flat = entropy > target  # bandwidth too wide: raise beta
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(torch.isinf(hi), beta * 2,
                           torch.where(torch.isinf(lo), beta / 2, (lo + hi) / 2))
    return p


def tsne(points: Tensor, *, perplexity: float = 30.0, iterations: int = 750,
         seed: int = 0, token: CancelToken | None = None) -> Tensor:
    """Exact t-SNE of ``points`` (N×D) to (N×2)."""
    n = len(points)
    if n > TSNE_MAX_POINTS:
        raise ParamError(f"t-SNE is exact here: at most {TSNE_MAX_POINTS} points, "
                         f"got {n}")
    if not 1 <= perplexity < max(n - 1, 2):
        raise ParamError(f"perplexity must be in [1, {n - 1}) for {n} points, got "
                         f"{perplexity:g}")
    x = points.double()
    x = x - x.mean(0)
    x = x / x.abs().max().clamp_min(1e-12)
    p = _affinities(torch.cdist(x, x).square(), perplexity)
    p = (p + p.T) / (2 * n)
    p = p.clamp_min(1e-12)
    gen = torch.Generator().manual_seed(seed)
    y = 1e-4 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    velocity = torch.zeros_like(y)
    gains = torch.ones_like(y)
    rate = max(n / 12.0, 50.0)  # the "auto" learning rate of later t-SNE work
    exaggerate_until = min(250, iterations // 3)
    for it in range(iterations):
        if token is not None and it % 25 == 0:
            token.check()
        pe = p * 12.0 if it < exaggerate_until else p
        num = 1.0 / (1.0 + torch.cdist(y, y).square())
        num.fill_diagonal_(0.0)
        q = (num / num.sum()).clamp_min(1e-12)
        w = (pe - q) * num
        grad = 4.0 * (w.sum(1, keepdim=True) * y - w @ y)
        momentum = 0.5 if it < exaggerate_until else 0.8
        same = (grad > 0) == (velocity > 0)
        gains = torch.where(same, gains * 0.8, gains + 0.2).clamp_min(0.01)
        velocity = momentum * velocity - rate * gains * grad
        y = y + velocity
        y = y - y.mean(0)
    return y.float()


def feature_projection_job(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    method: str = "pca",
    adversarial: bool = True,
    eps: float = 0.1,
    steps: int = 10,
    perplexity: float = 30.0,
    iterations: int = 750,
    seed: int = 0,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Features of images ``x`` (N×C×H×W) and of their PGD-eps examples,
    projected together. Snapshot ``result``: ``clean`` (N×2), ``adv`` (N×2,
    absent without ``adversarial``), ``labels``, ``pred_clean``,
    ``pred_adv``, ``centres`` (K×2, MMC models only), ``explained`` (PCA)."""
    token = token or CancelToken()
    if method not in METHODS:
        raise ParamError(f"method must be one of {', '.join(METHODS)}, got "
                         f"{method!r}")
    if len(x) < 2 or len(x) != len(y):
        raise ParamError(f"need at least 2 images and as many labels, got "
                         f"{len(x)} and {len(y)}")
    started = time.perf_counter()
    device = device_of(model)
    yield Progress(0, 3, "features")
    clean = penultimate_features(model, x)
    with torch.no_grad():
        pred_clean = model.head(clean.to(device)).argmax(1).cpu()
    result: dict[str, Any] = {"kind": "features", "labels": y.cpu().numpy(),
                              "pred_clean": pred_clean.numpy()}
    parts = [clean]
    if adversarial:
        token.check()
        atk = attacks.create("pgd", model, seed=seed, eps=eps, steps=steps,
                             alpha=2.5 * eps / steps)
        x_adv = torch.cat([atk(x[i:i + 256].to(device), y[i:i + 256].to(device))
                           for i in range(0, len(x), 256)])
        adv = penultimate_features(model, x_adv)
        with torch.no_grad():
            result["pred_adv"] = model.head(adv.to(device)).argmax(1).cpu().numpy()
        parts.append(adv)
    centres = mmc_centres(model)
    if centres is not None:
        parts.append(centres)
    yield Progress(1, 3, "projection")
    joint = torch.cat(parts)
    if method == "pca":
        mean, comps, ratio = pca(joint)
        embedded = (joint - mean) @ comps.T
        result["explained"] = ratio.numpy()
    else:
        embedded = tsne(joint, perplexity=perplexity, iterations=iterations,
                        seed=seed, token=token)
    n = len(x)
    result["clean"] = embedded[:n].numpy()
    if adversarial:
        result["adv"] = embedded[n:2 * n].numpy()
    if centres is not None:
        result["centres"] = embedded[len(joint) - len(centres):].numpy()
    yield Progress(3, 3, "projection")
    yield SnapshotEvent(1, 1, result, RESULT)
    summary = {"seconds": time.perf_counter() - started, "method": method, "n": n,
               "clean_acc": float((pred_clean == y.cpu()).float().mean()),
               "mmc": centres is not None}
    if adversarial:
        summary["robust_acc"] = float((result["pred_adv"] == result["labels"]).mean())
    yield Done(summary)


def feature_projection(model: nn.Module, x: Tensor, y: Tensor,
                       **kwargs: Any) -> dict[str, Any]:
    """The result arrays of :func:`feature_projection_job` (same arguments)."""
    for event in feature_projection_job(model, x, y, **kwargs):
        if isinstance(event, SnapshotEvent) and event.label == RESULT:
            return event.arrays
    raise RuntimeError("feature_projection_job ended without a result")
