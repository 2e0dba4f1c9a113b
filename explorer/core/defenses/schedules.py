"""Optimizers and learning-rate schedules; the implementation lives in
:mod:`explorer.core.training` (shared with the denoiser trainer)."""

from explorer.core.training.schedules import (
    CYCLIC_PEAK,
    OPTIMIZERS,
    SCHEDULES,
    check_schedule,
    lr_factor,
    make_optimizer,
)

__all__ = ["CYCLIC_PEAK", "OPTIMIZERS", "SCHEDULES", "check_schedule", "lr_factor",
           "make_optimizer"]
