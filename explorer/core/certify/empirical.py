"""The attack side of a certificate: empirical l2 robust accuracy, on the same
images and radii, of the base model and of its smoothed classifier.

A certified radius is a guarantee (a lower bound on robust accuracy); an
attack gives an upper bound. The gap between the two curves is what the
certificate leaves unexplained. Both curves use the project's PGD-l2
(``attacks.create("pgd", norm="l2")``, step 2.5·r/steps as Madry et al.):

* base model: plain PGD-l2 on f;
* smoothed classifier: PGD-l2 on f(x + ε), ε ~ N(0, σ²), with EOT through
  the noise (each pass draws fresh noise), judged by the smoothed PREDICT
  on the attacked image with abstentions counted as wrong.

The defaults are cheap (10 steps, EOT 4, PREDICT with 100 samples): a quick
picture, not a strong attack; the result says so in ``note``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.certify.smoothing import (
    ABSTAIN,
    DEFAULT_RADII,
    check_params,
    check_radii,
    images_of,
    predict,
)
from explorer.core.device import device_of
from explorer.core.inference import logits_of, make_generator
from explorer.core.jobs import CancelToken, Done, Event, Progress, Snapshot
from explorer.core.params import Param, validate

STEPS = Param("steps", int, 10, "PGD-l2 steps", minimum=1, maximum=10_000)
EOT_PASSES = Param("eot", int, 4, "EOT passes through the noise per step",
                   minimum=1, maximum=1000, label="EOT passes")
PREDICT_SAMPLES = Param("predict_samples", int, 100, "noisy samples of the "
                        "smoothed PREDICT on each attacked image", minimum=1,
                        maximum=1_000_000, label="PREDICT samples")
EMPIRICAL_PARAMS = (STEPS, EOT_PASSES, PREDICT_SAMPLES)


class NoisyInput(nn.Module):
    """``model(x + σ·ε)`` with fresh ε ~ N(0, I) at every call, drawn from a
    seeded generator on the input's device: the randomized classifier whose
    majority vote is the smoothed classifier."""

    def __init__(self, model: nn.Module, sigma: float, seed: int = 0) -> None:
        super().__init__()
        self.model, self.sigma, self.seed = model, float(sigma), seed
        self._gen: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self._gen is None or self._gen.device != x.device:
            self._gen = make_generator(self.seed, x.device)
        noise = torch.randn(x.shape, generator=self._gen, device=x.device,
                            dtype=x.dtype)
        return self.model(x + self.sigma * noise)


def _pgd_l2(model: nn.Module, x: Tensor, y: Tensor, radius: float, steps: int,
            eot: int, seed: int) -> Tensor:
    if radius == 0:
        return x
    atk = attacks.create("pgd", model, seed=seed, norm="l2", eps=radius,
                         alpha=2.5 * radius / steps, steps=steps, eot=eot)
    return atk(x, y)


def empirical_job(model: nn.Module, data: Any, n_images: int, *,
                  sigma: float = 0.25, radii: Sequence[float] = DEFAULT_RADII,
                  steps: int = 10, eot: int = 4, predict_samples: int = 100,
                  alpha: float = 0.001, batch_size: int = 200, seed: int = 0,
                  token: CancelToken | None = None,
                  device: torch.device | str | None = None) -> Iterator[Event]:
    """Robust accuracy of the base and the smoothed model at each radius of
    ``radii`` on the first ``n_images`` of ``data``. A Snapshot per radius
    (arrays ``radius``, ``base_acc``, ``smoothed_acc``), then Done with
    ``radii``, ``base_acc``, ``smoothed_acc`` and ``smoothed_abstain``
    ({radius: share}), the attack's settings, ``note`` and ``seconds``."""
    cfg = check_params(sigma=sigma, alpha=alpha, batch_size=batch_size,
                       samples=predict_samples)
    validate(EMPIRICAL_PARAMS, {"steps": steps, "eot": eot,
                                "predict_samples": predict_samples})
    levels = check_radii(radii)
    x, y = images_of(data, n_images)
    dev = torch.device(device) if device is not None else device_of(model)
    model = model.to(dev)
    x, y = x.to(dev), y.to(dev)
    noisy = NoisyInput(model, cfg["sigma"], seed)
    gen = make_generator(seed, dev)
    start = time.perf_counter()
    n, total = len(x), 2 * len(levels)
    base: dict[float, float] = {}
    smoothed: dict[float, float] = {}
    abstained: dict[float, float] = {}
    yield Progress(0, total, f"attacking {n} images at {len(levels)} radii")
    for i, r in enumerate(levels):
        if token is not None:
            token.check()
        x_adv = _pgd_l2(model, x, y, r, steps, 1, seed)
        base[r] = float((logits_of(model, x_adv).argmax(1) == y).float().mean())
        yield Progress(2 * i + 1, total, f"base model, radius {r:g}")
        if token is not None:
            token.check()
        x_adv = _pgd_l2(noisy, x, y, r, steps, eot, seed)
        preds = []
        for xi in x_adv:
            preds.append(predict(model, xi, sigma=cfg["sigma"],
                                 samples=predict_samples, alpha=cfg["alpha"],
                                 batch_size=batch_size, generator=gen, token=token))
        preds_t = torch.tensor(preds, device=dev)
        smoothed[r] = float(((preds_t == y) & (preds_t != ABSTAIN)).float().mean())
        abstained[r] = float((preds_t == ABSTAIN).float().mean())
        yield Snapshot(i, len(levels), {
            "radius": np.array(r), "base_acc": np.array(base[r]),
            "smoothed_acc": np.array(smoothed[r]),
            "smoothed_abstain": np.array(abstained[r])}, label=f"radius {r:g}")
        yield Progress(2 * i + 2, total, f"smoothed model, radius {r:g}")
    yield Done({
        "radii": list(levels), "base_acc": base, "smoothed_acc": smoothed,
        "smoothed_abstain": abstained, "n": n,
        "sigma": cfg["sigma"], "steps": steps, "eot": eot,
        "predict_samples": predict_samples, "alpha": cfg["alpha"], "seed": seed,
        "note": (f"cheap attack: PGD-l2 with {steps} steps (EOT {eot} through the "
                 f"noise for the smoothed model, judged by PREDICT with "
                 f"{predict_samples} samples, abstain = wrong, so it can dip "
                 f"below the certified curve where PREDICT is unsure); an upper "
                 f"bound on robust accuracy, not a guarantee"),
        "seconds": time.perf_counter() - start,
    })
