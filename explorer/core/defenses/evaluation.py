"""Clean and PGD accuracy on a fixed evaluation subset, once per epoch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.jobs import CancelToken

EVAL_BATCH = 250


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
