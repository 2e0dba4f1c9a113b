"""Clean and PGD accuracy on a fixed evaluation subset, once per epoch, and a
strip of adversarial examples of the model as it is now."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.jobs import CancelToken, Snapshot

EVAL_BATCH = 250
STRIP = "adversarial"  # label of the per-epoch Snapshot of adversarial examples
STRIP_SIZE = 8


def step_size(eps: float, steps: int) -> float:
    """Madry et al.'s rule: 2.5·eps/steps lets PGD cross the ball and back."""
    return 2.5 * eps / steps


def clean_and_robust(
    model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int,
    device: torch.device, token: CancelToken,
) -> tuple[float, float]:
    """Accuracy on ``x`` and under l-inf PGD-``steps`` at ``eps`` (seed 0, so
    every epoch meets the same attack start)."""
    atk = None
    if eps > 0:
        atk = attacks.create("pgd", model, eps=eps, alpha=step_size(eps, steps),
                             steps=steps, random_start=True, use_best=False, seed=0)
    clean = robust = 0
    for start in range(0, len(y), EVAL_BATCH):
        token.check()
        xb = x[start:start + EVAL_BATCH].to(device)
        yb = y[start:start + EVAL_BATCH].to(device)
        with attacks.model_frozen(model), torch.no_grad():
            hit = model(xb).argmax(1) == yb
        clean += int(hit.sum())
        if atk is None:
            robust += int(hit.sum())
            continue
        x_adv = atk(xb, yb)
        with attacks.model_frozen(model), torch.no_grad():
            robust += int((model(x_adv).argmax(1) == yb).sum())
    n = max(len(y), 1)
    return clean / n, robust / n


def adversarial_strip(
    model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int,
    device: torch.device, epoch: int, epochs: int, n: int = STRIP_SIZE,
) -> Snapshot:
    """The first ``n`` evaluation images and their l-inf PGD versions at
    ``eps`` (the evaluation's attack), as a Snapshot labelled ``adversarial``.

    Arrays: ``clean`` and ``adversarial`` (N×C×H×W float32 in [0, 1]),
    ``labels``, ``pred_clean``, ``pred_adv`` (N int64) and ``eps`` (0-d).
    ``step`` is the epoch just finished. A small fixed set, so the run log stays small.
    """
    xb, yb = x[:n].to(device), y[:n].to(device)
    x_adv = xb
    if eps > 0:
        atk = attacks.create("pgd", model, eps=eps, alpha=step_size(eps, steps),
                             steps=steps, random_start=True, use_best=False, seed=0)
        x_adv = atk(xb, yb)
    with attacks.model_frozen(model), torch.no_grad():
        pred_clean = model(xb).argmax(1)
        pred_adv = model(x_adv).argmax(1)

    def cpu(t: Tensor, dtype) -> np.ndarray:
        return t.detach().cpu().numpy().astype(dtype)

    return Snapshot(epoch, epochs, {
        "clean": cpu(xb, np.float32), "adversarial": cpu(x_adv, np.float32),
        "labels": cpu(yb, np.int64), "pred_clean": cpu(pred_clean, np.int64),
        "pred_adv": cpu(pred_adv, np.int64), "eps": np.array(eps)}, STRIP)
