"""A user's real noisy image as the observation: there is no clean image.

:func:`prepare` reads the file (and an optional clean reference of the same
size) as the denoiser takes it: the denoiser's channels (colour to grayscale
or back), a centre crop to at most ``max_side`` pixels a side so the lab stays
responsive, and sides cut down to the multiple a U-Net needs. Every change is
described in ``notes``; every unusable file gives a ``DenoiserError`` naming it.

Without a reference, ObsAtk cannot measure the error to a clean image, so it
attacks the deviation from the unattacked reconstruction instead: maximise
``||f(v + d) - f(v)||^2`` with the target ``f(v)`` held fixed. That objective
and its gradient are exactly zero at ``d = 0``, so an attack started there
never moves: :func:`obsatk_real_live` starts at a random zero-mean point of
the ball (the reference-free case only).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core.data import images
from explorer.core.denoise import metrics
from explorer.core.denoise.files import check_input
from explorer.core.denoise.noise import load_real
from explorer.core.denoise.obsatk import (
    ObsAtk,
    check_budget,
    pass_through_gain,
    random_baseline,
)
from explorer.core.denoise.registry import DenoiserError, size_multiple
from explorer.core.inference import make_generator
from explorer.core.jobs import CancelToken, Done, Event, Snapshot

MAX_SIDE = 256  # larger images are centre-cropped to this many pixels a side


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says: ``height``, ``width``, ``colour``."""

    path: Path
    height: int
    width: int
    colour: bool


@dataclass(frozen=True)
class RealObservation:
    """``noisy`` (and ``clean``, when a reference was given) as C×H×W in [0, 1]."""

    noisy: Tensor
    clean: Tensor | None
    notes: tuple[str, ...]


def inspect(path: str | os.PathLike[str]) -> ImageInfo:
    """Read only the header (fast enough for the UI thread)."""
    path = Path(path)
    try:
        width, height, colour = images.header(path)
    except images.ImageFileError as exc:
        raise DenoiserError(str(exc)) from None
    return ImageInfo(path, height, width, colour)


def crop_box(height: int, width: int, multiple: int = 1,
             max_side: int = MAX_SIDE) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of the centred crop: sides at most ``max_side``,
    then cut down to a multiple of ``multiple``; a ValueError when a side is
    shorter than ``multiple``."""
    if height < multiple or width < multiple:
        raise ValueError(f"needs at least {multiple}×{multiple} pixels")
    h, w = min(height, max_side), min(width, max_side)
    h, w = h - h % multiple, w - w % multiple
    return (height - h) // 2, (width - w) // 2, h, w


def _size(h: int, w: int) -> str:
    return f"{w}×{h}"  # as image viewers say it: width × height


def prepare(path: str | os.PathLike[str], denoiser: nn.Module,
            reference: str | os.PathLike[str] | None = None,
            max_side: int = MAX_SIDE) -> RealObservation:
    """The file as ``denoiser`` takes it (see the module doc)."""
    meta = denoiser.meta
    path, channels = Path(path), int(meta.channels)
    if channels not in (1, 3):
        raise DenoiserError(f"{meta.arch} takes {channels}-channel images; real "
                            f"images can be read as 1 (gray) or 3 (RGB) channels")
    info = inspect(path)
    noisy = load_real(path, channels)
    h, w = noisy.shape[-2:]
    notes = []
    if info.colour and channels == 1:
        notes.append("colour converted to grayscale (1-channel denoiser)")
    elif not info.colour and channels == 3:
        notes.append("grayscale repeated to RGB (3-channel denoiser)")
    clean = None
    if reference:
        reference = Path(reference)
        inspect(reference)
        clean = load_real(reference, channels)
        if clean.shape[-2:] != noisy.shape[-2:]:
            raise DenoiserError(
                f"{reference}: the clean reference is "
                f"{_size(*clean.shape[-2:])} but {path.name} is {_size(h, w)}; "
                "they must be the same size")
    multiple = size_multiple(meta)
    try:
        top, left, ch, cw = crop_box(h, w, multiple, max_side)
    except ValueError as exc:
        raise DenoiserError(f"{path}: {_size(h, w)} is too small: {meta.arch} "
                            f"{exc}") from None
    if (ch, cw) != (h, w):
        why = (f"at most {max_side} pixels a side" if max(h, w) > max_side
               else "")
        if multiple > 1 and (min(h, max_side) % multiple or min(w, max_side)
                             % multiple):
            why += (" and " if why else "") + (f"{meta.arch} needs sides "
                                               f"divisible by {multiple}")
        notes.append(f"centre crop {_size(h, w)} → {_size(ch, cw)}: {why}")
        noisy = noisy[:, top:top + ch, left:left + cw]
        if clean is not None:
            clean = clean[:, top:top + ch, left:left + cw]
    check_input(denoiser, noisy[None])
    return RealObservation(noisy.contiguous(), None if clean is None
                           else clean.contiguous(), tuple(notes))


@torch.no_grad()
def reconstruction(denoiser: nn.Module, v: Tensor) -> Tensor:
    """``f(v)`` in eval mode, detached: the reference-free attack's target."""
    was_training = denoiser.training
    denoiser.eval()
    try:
        return denoiser(v).detach()
    finally:
        denoiser.train(was_training)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def obsatk_real_live(denoiser: nn.Module, v: Tensor, clean: Tensor | None = None,
                     *, rho: float, steps: int = 20, seed: int = 0, every: int = 1,
                     token: CancelToken | None = None) -> Iterator[Event]:
    """ObsAtk on real noisy observations ``v`` (N×C×H×W), live.

    With ``clean`` it maximises ``||f(v+d) - x||^2`` as usual; without, the
    deviation ``||f(v+d) - f(v)||^2`` from a random start. Snapshots carry
    ``v_adv``, ``delta``, ``denoised`` and ``loss``; the first also ``noisy``
    and, with a reference, ``clean``. ``Done`` holds per image the squared
    deviations ``deviation_attacked`` / ``deviation_random`` (a random
    zero-mean d of the same norm), the pass-through gains ``gain_attacked`` /
    ``gain_random`` along both and, with a reference, the PSNR/SSIM keys
    of :func:`explorer.core.denoise.obsatk_live` plus ``psnr_random``.
    """
    token = token or CancelToken()
    check_budget(rho, steps)
    check_input(denoiser, v)
    gen = make_generator(seed, v.device)
    plain = reconstruction(denoiser, v)
    target = plain if clean is None else clean
    attack = ObsAtk(rho, steps, random_start=clean is None)
    last = None
    for it in attack.run(denoiser, v, target, gen, live=True):
        token.check()
        last = it
        if it.step % every and it.step < steps:
            continue
        out = reconstruction(denoiser, it.v_adv)
        arrays = {"v_adv": _np(it.v_adv), "delta": _np(it.delta),
                  "denoised": _np(out), "loss": _np(it.loss)}
        if it.step == 0:
            arrays["noisy"] = _np(v)
            if clean is not None:
                arrays["clean"] = _np(clean)
        label = "best" if it.step > steps else f"step {it.step}/{steps}"
        yield Snapshot(min(it.step, steps), steps, arrays, label)
    attacked = reconstruction(denoiser, last.v_adv)
    d_random = random_baseline(tuple(v.shape), rho, gen, v.device)
    randomly = reconstruction(denoiser, v + d_random)
    results = {"rho": rho, "steps": steps,
               "deviation_attacked": _sq(attacked - plain),
               "deviation_random": _sq(randomly - plain),
               # needs no clean image: how much of each direction gets through
               "gain_attacked": pass_through_gain(denoiser, v, last.delta).tolist(),
               "gain_random": pass_through_gain(denoiser, v, d_random).tolist()}
    if clean is not None:
        for key, image in (("noisy", v), ("denoised", plain), ("attacked", attacked),
                           ("random", randomly)):
            results[f"psnr_{key}"] = metrics.psnr(clean, image).tolist()
            results[f"ssim_{key}"] = metrics.ssim(clean, image).tolist()
    yield Done(results)


def _sq(diff: Tensor) -> list[float]:
    return diff.flatten(1).pow(2).sum(1).tolist()
