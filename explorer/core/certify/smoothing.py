"""Randomized smoothing (Cohen, Rosenfeld & Kolter 2019): certified l2 radii.

The smoothed classifier g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ²I), is
robust within an l2 ball around x whose radius follows from a lower bound on
the top class's probability. Both procedures are the paper's:

* CERTIFY: n0 noisy samples pick the top class cA; n fresh samples count how
  often f returns it (nA); p_lower is the one-sided Clopper–Pearson lower
  bound on P(f(x + ε) = cA) at level 1 - alpha (scipy's exact binomial
  interval); abstain when p_lower ≤ 1/2, else certify cA with radius
  σ·Φ⁻¹(p_lower). The certificate fails with probability at most alpha.
* PREDICT: n samples; the top two counts nA, nB; abstain unless the
  two-sided binomial test of nA against nA + nB at p = 1/2 has a p-value of
  at most alpha.

Noise is drawn in batches of ``batch_size`` from one seeded generator on the
model's device, image after image, so a seed gives the same counts again.
Noise is added to the [0, 1] image without clipping, as in the paper.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn

from explorer.core.device import device_of
from explorer.core.inference import make_generator, model_frozen
from explorer.core.jobs import CancelToken, Done, Event, Progress, Snapshot
from explorer.core.params import Param, ParamError, validate

ABSTAIN = -1
SIGMA = Param("sigma", float, 0.25, "std of the Gaussian noise (pixel units, > 0)",
              minimum=0.0, maximum=10.0, label="σ (noise std)")
SAMPLES0 = Param("samples0", int, 100, "n0: noisy samples that pick the top class",
                 minimum=1, maximum=10_000_000, label="n0 (selection)")
SAMPLES = Param("samples", int, 1000, "n: noisy samples that bound the top "
                "class's probability", minimum=1, maximum=10_000_000,
                label="n (estimation)")
ALPHA = Param("alpha", float, 0.001, "failure probability of the certificate, "
              "in (0, 1)", minimum=0.0, maximum=1.0, label="α (failure prob.)")
BATCH = Param("batch_size", int, 200, "noisy samples per forward pass", minimum=1,
              maximum=1_000_000, label="batch")
SMOOTHING_PARAMS = (SIGMA, SAMPLES0, SAMPLES, ALPHA, BATCH)
DEFAULT_RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


def check_params(**values: Any) -> dict[str, Any]:
    """Validated smoothing parameters (any of :data:`SMOOTHING_PARAMS`);
    ParamError naming the bad one. sigma must be positive and alpha strictly
    inside (0, 1), which the specs' closed ranges cannot say."""
    known = {p.name for p in SMOOTHING_PARAMS}
    cfg = validate([p for p in SMOOTHING_PARAMS if p.name in values],
                   {k: v for k, v in values.items() if k in known})
    if "sigma" in cfg and cfg["sigma"] <= 0:
        raise ParamError(f"sigma must be positive (the noise std), got "
                         f"{cfg['sigma']:g}")
    if "alpha" in cfg and not 0 < cfg["alpha"] < 1:
        raise ParamError(f"alpha must be in (0, 1) (exclusive), got {cfg['alpha']:g}")
    return cfg


def check_radii(radii: Sequence[float]) -> tuple[float, ...]:
    """Sorted distinct l2 radii, each ≥ 0; ParamError otherwise."""
    try:
        out = tuple(sorted({float(r) for r in radii}))
    except (TypeError, ValueError):
        raise ParamError(f"radii must be numbers, got {radii!r}") from None
    if not out:
        raise ParamError("radii must list at least one radius")
    if out[0] < 0 or not all(math.isfinite(r) for r in out):
        raise ParamError(f"radii must be finite and ≥ 0, got {list(radii)}")
    return out


def lower_confidence_bound(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper–Pearson lower bound on a binomial proportion at
    level 1 - alpha (Cohen et al.'s ``proportion_confint(k, n, 2·alpha,
    method="beta")[0]``)."""
    test = stats.binomtest(int(k), int(n), alternative="greater")
    return float(test.proportion_ci(confidence_level=1 - alpha, method="exact").low)


def radius_of(p_lower: float, sigma: float) -> float | None:
    """σ·Φ⁻¹(p_lower), or None (abstain) when p_lower ≤ 1/2."""
    if p_lower <= 0.5:
        return None
    return float(sigma * stats.norm.ppf(p_lower))


def max_radius(sigma: float, samples: int, alpha: float) -> float:
    """The largest radius n samples can certify (all n agree): σ·Φ⁻¹(α^(1/n)).
    Beyond it certified accuracy is 0 whatever the model; more samples help."""
    radius = radius_of(lower_confidence_bound(samples, samples, alpha), sigma)
    return 0.0 if radius is None else radius


@torch.no_grad()
def sample_counts(model: nn.Module, x: Tensor, num: int, *, sigma: float,
                  batch_size: int, generator: torch.Generator,
                  num_classes: int | None = None,
                  token: CancelToken | None = None) -> np.ndarray:
    """How often ``model`` predicts each class on ``num`` copies of image ``x``
    (C×H×W) plus N(0, σ²) noise, drawn in batches of ``batch_size``."""
    counts: np.ndarray | None = None if num_classes is None else np.zeros(
        num_classes, np.int64)
    remaining = num
    while remaining > 0:
        if token is not None:
            token.check()
        size = min(batch_size, remaining)
        remaining -= size
        batch = x.unsqueeze(0).expand(size, *x.shape)
        noise = torch.randn(batch.shape, generator=generator, device=x.device,
                            dtype=x.dtype)
        logits = model(batch + sigma * noise)
        if counts is None:
            counts = np.zeros(logits.shape[1], np.int64)
        counts += np.bincount(logits.argmax(1).cpu().numpy(),
                              minlength=len(counts))[:len(counts)]
    assert counts is not None
    return counts


@dataclass(frozen=True, slots=True)
class Certificate:
    """CERTIFY's answer for one image: ``prediction`` is :data:`ABSTAIN`
    (and ``radius`` None) when p_lower ≤ 1/2; ``counts`` are the n
    estimation counts, ``counts0`` the n0 selection counts."""

    prediction: int
    radius: float | None
    p_lower: float
    counts: np.ndarray
    counts0: np.ndarray


def certify(model: nn.Module, x: Tensor, *, sigma: float, samples0: int,
            samples: int, alpha: float, batch_size: int = 200,
            generator: torch.Generator | None = None,
            token: CancelToken | None = None) -> Certificate:
    """The paper's CERTIFY on one image ``x`` (C×H×W, on the model's device)."""
    check_params(sigma=sigma, samples0=samples0, samples=samples, alpha=alpha,
                 batch_size=batch_size)
    gen = generator or make_generator(0, x.device)
    args = {"sigma": sigma, "batch_size": batch_size, "generator": gen,
            "token": token}
    with model_frozen(model):
        counts0 = sample_counts(model, x, samples0, **args)
        top = int(counts0.argmax())
        counts = sample_counts(model, x, samples, num_classes=len(counts0), **args)
    p_lower = lower_confidence_bound(int(counts[top]), samples, alpha)
    radius = radius_of(p_lower, sigma)
    return Certificate(ABSTAIN if radius is None else top, radius, p_lower,
                       counts, counts0)


def predict_from_counts(counts: np.ndarray, alpha: float) -> int:
    """PREDICT's decision from its n counts: the top class, or
    :data:`ABSTAIN` when the two-sided binomial test of the top two counts
    cannot reject p = 1/2 at level alpha."""
    order = np.argsort(-counts, kind="stable")
    n_a = int(counts[order[0]])
    n_b = int(counts[order[1]]) if len(counts) > 1 else 0
    if stats.binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
        return ABSTAIN
    return int(order[0])


def predict(model: nn.Module, x: Tensor, *, sigma: float, samples: int,
            alpha: float, batch_size: int = 200,
            generator: torch.Generator | None = None,
            token: CancelToken | None = None) -> int:
    """The paper's PREDICT on one image: a class, or :data:`ABSTAIN`."""
    check_params(sigma=sigma, samples=samples, alpha=alpha, batch_size=batch_size)
    gen = generator or make_generator(0, x.device)
    with model_frozen(model):
        counts = sample_counts(model, x, samples, sigma=sigma,
                               batch_size=batch_size, generator=gen, token=token)
    return predict_from_counts(counts, alpha)


def certified_accuracy(radii: Sequence[float | None],
                       levels: Sequence[float]) -> dict[float, float]:
    """Share of images certified correct with a radius ≥ each level (``radii``
    holds None for wrong or abstained images)."""
    r = np.array([-np.inf if x is None else x for x in radii], dtype=float)
    grid = np.asarray(levels, dtype=float)
    shares = ((r[:, None] >= grid[None, :]).mean(0) if len(r)
              else np.zeros(len(grid)))
    return dict(zip(grid.tolist(), shares.tolist(), strict=True))


def images_of(data: Any, n_images: int) -> tuple[Tensor, Tensor]:
    """The first ``n_images`` of a data set (``as_tensors``) or an (x, y)
    pair; ParamError when there are none or too few are asked for."""
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ParamError(f"n_images must be at least 1, got {n_images!r}")
    if isinstance(data, tuple | list):
        x, y = data
        x, y = x[:n_images], y[:n_images]
    else:
        x, y = data.as_tensors(0, min(n_images, len(data)))
    if len(x) == 0:
        raise ParamError("the data set has no images to certify")
    return x, torch.as_tensor(y).long()


def certify_job(model: nn.Module, data: Any, n_images: int, *,
                sigma: float = 0.25, samples0: int = 100, samples: int = 1000,
                alpha: float = 0.001, radii: Sequence[float] = DEFAULT_RADII,
                batch_size: int = 200, seed: int = 0,
                token: CancelToken | None = None,
                device: torch.device | str | None = None) -> Iterator[Event]:
    """CERTIFY on the first ``n_images`` of ``data``, one Snapshot per image
    (arrays ``index``, ``label``, ``prediction`` (-1 abstain), ``counts``,
    ``p_lower``, ``radius`` (NaN abstain)), then Done with ``radii`` (per
    image: the radius when the certified class is the label, else None),
    ``certified_acc`` {radius: share}, ``clean_acc`` (smoothed, abstain
    counted wrong), ``abstain_rate``, ``seconds`` and the parameters."""
    cfg = check_params(sigma=sigma, samples0=samples0, samples=samples,
                       alpha=alpha, batch_size=batch_size)
    levels = check_radii(radii)
    x_all, y_all = images_of(data, n_images)
    dev = torch.device(device) if device is not None else device_of(model)
    model = model.to(dev)
    gen = make_generator(seed, dev)
    start = time.perf_counter()
    n = len(x_all)
    per_image: list[float | None] = []
    correct = abstained = 0
    yield Progress(0, n, f"certifying {n} images (n0={samples0}, n={samples})")
    for i in range(n):
        cert = certify(model, x_all[i].to(dev), generator=gen, token=token, **cfg)
        label = int(y_all[i])
        right = cert.prediction == label
        correct += right
        abstained += cert.prediction == ABSTAIN
        per_image.append(cert.radius if right else None)
        yield Snapshot(i, n, {
            "index": np.array(i), "label": np.array(label),
            "prediction": np.array(cert.prediction), "counts": cert.counts,
            "p_lower": np.array(cert.p_lower),
            "radius": np.array(np.nan if cert.radius is None else cert.radius),
        }, label=f"image {i}")
        yield Progress(i + 1, n, f"certified {i + 1}/{n} images")
    yield Done({
        "radii": per_image,
        "certified_acc": certified_accuracy(per_image, levels),
        "clean_acc": correct / n, "abstain_rate": abstained / n, "n": n,
        "max_radius": max_radius(cfg["sigma"], samples, cfg["alpha"]),
        "sigma": cfg["sigma"], "samples0": samples0, "samples": samples,
        "alpha": cfg["alpha"], "batch_size": batch_size, "seed": seed,
        "seconds": time.perf_counter() - start,
    })
