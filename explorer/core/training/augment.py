"""Training-image augmentation: random crop with zero padding, horizontal flip.

The published CIFAR-10 recipe (He et al. 2016; Madry et al. 2018; Rice et al.
2020): pad each image with 4 pixels of zeros on every side, crop it back to
H×W at a random offset, and mirror it left-right with probability 1/2. The
classifier trainer applies it to the clean training batch before the defense
crafts anything from it (PGD-AT attacks the augmented image); evaluation
images are never augmented.

The draws of batch ``b`` in epoch ``e`` come from a generator seeded with
(seed, e, b) alone (:func:`batch_generator`), so a run resumed mid-epoch sees
exactly the crops and flips of an uninterrupted one and the checkpoint keeps
no augmentation state. They are drawn on the CPU (2N+N small integers) and
moved to the batch's device, so a seed gives the same crops on any device.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from explorer.core.params import Param

MODES = ("auto", "none", "crop-flip", "crop", "flip")
PAD = 4  # pixels of zeros on each side before the crop

AUGMENT = Param(
    "augment", str, "auto",
    "augmentation of the training images: auto = crop-flip for 32×32 colour "
    "sets (CIFAR-10, SVHN), none otherwise; crop = a random H×W window of the "
    f"image padded with {PAD} zero pixels per side; flip = mirror half the "
    "images left-right; evaluation images are never augmented",
    choices=MODES, label="augmentation")


def resolve(mode: str, shape: Sequence[int]) -> str:
    """The concrete mode of ``mode`` for images of ``shape`` (C, H, W):
    ``auto`` is crop-flip for 3×32×32 images, none for anything else."""
    mode = AUGMENT.validate(mode)
    if mode != "auto":
        return mode
    return "crop-flip" if tuple(shape) == (3, 32, 32) else "none"


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """A CPU generator that depends on (seed, epoch, batch) and nothing else."""
    digest = hashlib.blake2b(f"augment/{seed}/{epoch}/{batch}".encode(),
                             digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def augment(x: Tensor, mode: str, generator: torch.Generator, *,
            pad: int = PAD) -> Tensor:
    """``x`` (N×C×H×W in [0, 1]) cropped and/or flipped per image, as ``mode``
    says (a resolved mode: not ``auto``); a new tensor on ``x``'s device.

    One gather along the rows, one along the columns: image i's output pixel
    (r, c) is its padded pixel (r + dy_i, c + dx_i), the column index
    mirrored (dx_i + W-1-c) for the flipped images. ``none`` returns ``x``.
    """
    if mode not in MODES[1:]:
        raise ValueError(f"augment mode must be one of {', '.join(MODES[1:])} "
                         f"(resolve 'auto' first), got {mode!r}")
    crop, flip = mode in ("crop-flip", "crop"), mode in ("crop-flip", "flip")
    n, c, h, w = x.shape
    if not (crop or flip) or n == 0:
        return x
    rows = torch.arange(h).expand(n, h)
    cols = torch.arange(w).expand(n, w)
    if crop:
        dy, dx = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator)
        rows, cols = rows + dy, cols + dx
        x = F.pad(x, (pad, pad, pad, pad))  # zeros: black borders
    if flip:
        mirror = torch.randint(0, 2, (n, 1), generator=generator).bool()
        cols = torch.where(mirror, cols.flip(1), cols)
    rows, cols = rows.to(x.device), cols.to(x.device)
    x = x.gather(2, rows[:, None, :, None].expand(n, c, h, x.shape[3]))
    return x.gather(3, cols[:, None, None, :].expand(n, c, h, w))
