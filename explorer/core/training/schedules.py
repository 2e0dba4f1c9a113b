"""Optimizers and learning-rate schedules, the schedule as a pure function.

The learning rate is a function of the global step, set on the optimizer
before every update; resuming only needs the step count (no scheduler object
whose state could drift from the checkpoint).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from explorer.core.params import ParamError

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("piecewise", "cosine", "cyclic", "constant")
CYCLIC_PEAK = 0.4  # Wong et al.'s one-cycle schedule peaks at 2/5 of training


def make_optimizer(params: Iterable[nn.Parameter], name: str, *, lr: float,
                   momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum,
                               weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ParamError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        raise ParamError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                         f"got {name!r}")


def lr_factor(name: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total`` updates.

    piecewise: 1, then 0.1 from half way, 0.01 from three quarters (Madry et
    al., Rice et al.); cosine: half a cosine to 0; cyclic: linear up to 1 at
    40% and back down to 0 (Wong et al.); constant: 1.
    """
    t = step / max(total, 1)
    if name == "piecewise":
        return 1.0 if t < 0.5 else 0.1 if t < 0.75 else 0.01
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if name == "cyclic":
        return t / CYCLIC_PEAK if t < CYCLIC_PEAK else (1 - t) / (1 - CYCLIC_PEAK)
    if name == "constant":
        return 1.0
    check_schedule(name)
    return 1.0
