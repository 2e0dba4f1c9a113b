"""Square Attack's moves (Andriushchenko et al. 2020): initialisations and
random square updates for the l-inf and l2 threat models.

Every sample draws its own square (position, signs, orientation) from the
caller's generator. The l-inf proposals stay inside the ball and the image
range by construction; the l2 ones are rescaled to the budget here and
projected by the attack as a final safety net.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from explorer.core.attacks import draws

_TINY = 1e-12


def _signs(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    return draws.randint(0, 2, shape, generator,
                         device=like.device).to(like.dtype) * 2 - 1


def _corners(x: Tensor, s: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    b, _, h, w = x.shape
    r = draws.randint(0, h - s + 1, (b,), generator, device=x.device)
    c = draws.randint(0, w - s + 1, (b,), generator, device=x.device)
    return r, c


def _window(r: Tensor, c: Tensor, s: int, h: int, w: int) -> Tensor:
    """B×1×H×W mask of each sample's s×s square with top-left corner (r, c)."""
    rows = torch.arange(h, device=r.device)
    cols = torch.arange(w, device=r.device)
    in_r = (rows >= r[:, None]) & (rows < r[:, None] + s)
    in_c = (cols >= c[:, None]) & (cols < c[:, None] + s)
    return (in_r[:, :, None] & in_c[:, None, :])[:, None]


def stripes_init(x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    """l-inf start: vertical stripes of ±eps, one sign per column and channel."""
    b, ch, _, w = x.shape
    return (x + eps * _signs((b, ch, 1, w), generator, x)).clamp(0, 1)


def propose_linf(x: Tensor, x_best: Tensor, eps: float, p: float,
                 generator: torch.Generator) -> Tensor:
    """Set one random square per sample to ±eps (one sign per channel).

    The paper redraws the signs while they would leave the image unchanged.
    Per channel, at most one sign leaves the square as it is (x + eps and
    x - eps never clip to the same value), so at most one sign vector is
    "unchanged"; redrawing until the image changes is therefore the same as
    flipping that vector by a uniformly drawn non-zero channel mask, which is
    done here for those samples in one pass. Values are built as
    ``clamp(x ± eps, 0, 1)`` inside the square and copied from ``x_best``
    elsewhere, so proposals never leave the l-inf ball or the image range.
    """
    b, ch, h, w = x.shape
    s = min(max(round(math.sqrt(p * h * w)), 1), h, w)
    r, c = _corners(x, s, generator)
    # Only the B·s·s pixels of the squares are touched (late in an attack s
    # is 1-4 pixels): advanced indexing gives B×s×s×C blocks.
    k = torch.arange(s, device=x.device)
    ii, jj = (r[:, None] + k)[:, :, None], (c[:, None] + k)[:, None, :]
    at = (torch.arange(b, device=x.device)[:, None, None], slice(None), ii, jj)
    signs = _signs((b, 1, 1, ch), generator, x)
    square = (x[at] + eps * signs).clamp(0, 1)
    unchanged = (square - x_best[at]).abs().flatten(1).amax(1) < 1e-7
    if unchanged.any():
        if draws.per_image(generator):  # only those images draw: theirs alone
            masks = torch.ones((b, 1), dtype=torch.int64, device=x.device)
            at_rows = unchanged.nonzero(as_tuple=True)[0]
            masks[at_rows] = draws.randint(1, 2**ch, (len(at_rows), 1),
                                           draws.rows(generator, at_rows),
                                           device=x.device)
        else:
            masks = draws.randint(1, 2**ch, (b, 1), generator, device=x.device)
        bits = (masks >> torch.arange(ch, device=x.device)) & 1  # B×C, never all 0
        flip = torch.where(unchanged[:, None] & (bits == 1), -1.0, 1.0).to(x.dtype)
        square = (x[at] + eps * signs * flip.view(b, 1, 1, ch)).clamp(0, 1)
    x_new = x_best.clone()
    x_new[at] = square
    return x_new


def bump(h1: int, h2: int, *, device: torch.device | None = None) -> Tensor:
    """The paper's pseudo-Gaussian h1×h2 patch, unit l2 norm.

    Concentric rectangles k = 0, 1, ... around the centre each add
    1/(k+1)²; a cell at Chebyshev distance d from the centre thus holds
    sum_{k >= d} 1/(k+1)².
    """
    k = max(h1, h2) // 2 + 1
    weights = 1.0 / torch.arange(1, k + 1, device=device, dtype=torch.float32) ** 2
    tail = torch.cat([weights.flip(0).cumsum(0).flip(0), weights.new_zeros(1)])
    dr = (torch.arange(h1, device=device) - h1 // 2).abs()
    dc = (torch.arange(h2, device=device) - h2 // 2).abs()
    patch = tail[torch.maximum(dr[:, None], dc[None, :]).clamp(max=k)]
    return patch / patch.norm().clamp_min(_TINY)


def meta_bump(s: int, *, device: torch.device | None = None) -> Tensor:
    """s×s patch: a bump on the upper half, a negative bump on the lower."""
    patch = torch.cat([bump(s // 2, s, device=device),
                       -bump(s - s // 2, s, device=device)])
    return patch / patch.norm().clamp_min(_TINY)


def _placed(pattern: Tensor, r: Tensor, c: Tensor, flip: Tensor, h: int,
            w: int) -> Tensor:
    """B×1×H×W: ``pattern`` (or its transpose where ``flip``) in each square."""
    s = pattern.shape[0]
    both = torch.stack([pattern, pattern.T])
    i = (torch.arange(h, device=r.device)[None] - r[:, None]).clamp(0, s - 1)
    j = (torch.arange(w, device=r.device)[None] - c[:, None]).clamp(0, s - 1)
    values = both[flip.long()[:, None, None], i[:, :, None], j[:, None, :]]
    return values[:, None] * _window(r, c, s, h, w)


def _channel_norm(t: Tensor) -> Tensor:
    return t.pow(2).sum((2, 3), keepdim=True).sqrt()


def _sample_norm(t: Tensor) -> Tensor:
    return t.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def l2_init(x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
    """l2 start: a grid of tiles (side ≈ H/5), each a meta-bump of random sign
    and orientation, scaled so the whole perturbation has norm eps."""
    b, ch, h, w = x.shape
    s = max(min(h, w) // 5, 1)
    pattern = meta_bump(s, device=x.device).to(x.dtype)
    n_r, n_c = h // s, w // s
    off_r, off_c = (h - n_r * s) // 2, (w - n_c * s) // 2
    delta = torch.zeros_like(x)
    for tr in range(n_r):
        for tc in range(n_c):
            r = torch.full((b,), off_r + tr * s, device=x.device)
            c = torch.full((b,), off_c + tc * s, device=x.device)
            flip = draws.randint(0, 2, (b,), generator, device=x.device)
            delta = delta + _placed(pattern, r, c, flip, h, w) * _signs(
                (b, ch, 1, 1), generator, x)
    return x + eps * delta / _sample_norm(delta).clamp_min(_TINY)


def propose_l2(x: Tensor, x_best: Tensor, eps: float, p: float,
               generator: torch.Generator) -> Tensor:
    """The paper's l2 move: a fresh meta-bump in square W1 absorbs the
    perturbation mass of W1 and of a second square W2 (which is emptied) plus
    any unused budget; the result is rescaled to norm eps."""
    b, ch, h, w = x.shape
    s = max(round(math.sqrt(p * h * w)), 3)
    s = min(s + (s % 2 == 0), h, w)
    delta = x_best - x
    r1, c1 = _corners(x, s, generator)
    r2, c2 = _corners(x, s, generator)
    w1, w2 = _window(r1, c1, s, h, w), _window(r2, c2, s, h, w)
    norm_w1 = _channel_norm(delta * w1)
    norm_both = _channel_norm(delta * (w1 | w2))
    spare = (eps**2 - _sample_norm(delta) ** 2).clamp_min(0) / ch
    flip = draws.randint(0, 2, (b,), generator, device=x.device)
    pattern = meta_bump(s, device=x.device).to(x.dtype)
    fresh = _placed(pattern, r1, c1, flip, h, w) * _signs((b, ch, 1, 1), generator, x)
    fresh = fresh + delta * w1 / (norm_w1 + 1e-10)
    scale = (spare + norm_both**2).sqrt()
    fresh = fresh / _channel_norm(fresh).clamp_min(_TINY) * scale
    delta = torch.where(w1, fresh, torch.where(w2, torch.zeros_like(delta), delta))
    return x + eps * delta / _sample_norm(delta).clamp_min(_TINY)
