"""The validation split: training images held out to choose the best epoch.

Model selection (the best checkpoint, the overfitting alarms, NoiLIn's
schedule) must never read test images, or the "best" figures it reports are
optimistically biased. A run therefore holds out ``fraction`` of its
training images (at most ``max_n``) and scores each epoch on them; the test
images are still scored beside them, for the record only.

Which images are held out depends on the seed and the set's size alone (a
seeded permutation, no stratification), so a resumed run holds out the same
ones. With ``fraction`` 0 nothing is held out: there is nothing to select
on, and the trainer keeps the last epoch as its best (``selected_on`` is
``"last"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from explorer.core.params import Param, ParamError

VAL_FRACTION, VAL_MAX = 0.1, 5000  # the defaults: 10 %, at most 5,000 images
_STREAM = 0x76616C  # keeps the split's draws apart from the shuffle's (same seed)

VAL_PARAM = Param(
    "val_fraction", float, VAL_FRACTION,
    "share of the training images held out as a validation split (at most "
    f"{VAL_MAX:,}): the best checkpoint, the overfitting alarms and NoiLIn read "
    "its accuracy, never the test images'; 0 = no split, the last epoch is kept",
    0.0, 0.99, label="validation share")


@dataclass(frozen=True)
class Split:
    """Indices into the training set, each ascending and disjoint."""

    train: Tensor
    val: Tensor

    @property
    def selected_on(self) -> str:
        """``"validation"``, or ``"last"`` when nothing is held out."""
        return selected_on(len(self.val))


def selected_on(val_n: int) -> str:
    return "validation" if val_n > 0 else "last"


def check_fraction(fraction: float) -> float:
    """``fraction`` as a float in [0, 1), or a ParamError naming it."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
            or not 0 <= fraction < 1:
        raise ParamError(f"val_fraction must be at least 0 and below 1, got "
                         f"{fraction!r}")
    return float(fraction)


def validation_size(n: int, fraction: float, max_n: int = VAL_MAX) -> int:
    """How many of ``n`` training images are held out: ``fraction`` of them
    rounded, at least 1 when ``fraction`` > 0, at most ``max_n``. A
    ParamError when that leaves no image to train on."""
    fraction = check_fraction(fraction)
    if fraction == 0:
        return 0
    val_n = min(max(1, round(n * fraction)), max_n)
    if val_n >= n:
        raise ParamError(f"val_fraction {fraction:g} holds out {val_n} of the {n} "
                         "training images and leaves none to train on")
    return val_n


def validation_split(n: int, fraction: float, max_n: int, seed: int) -> Split:
    """The held-out and the training indices of a set of ``n`` images."""
    val_n = validation_size(n, fraction, max_n)
    if val_n == 0:
        return Split(torch.arange(n), torch.zeros(0, dtype=torch.int64))
    order = np.random.default_rng((_STREAM, seed)).permutation(n)
    val = np.sort(order[:val_n])
    train = np.sort(order[val_n:])
    return Split(torch.from_numpy(train).long(), torch.from_numpy(val).long())
