"""Saving and loading denoisers (safetensors + metadata), and the built-ins.

A denoiser file is a safetensors file whose header holds ``explorer.denoiser``
(a :class:`DenoiserMeta` with ``kind = "denoiser"``). A classifier file (which
holds ``explorer.meta`` instead) is refused with a message saying so.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes
from torch import Tensor, nn

from explorer.core.denoise.registry import (
    KIND,
    DenoiserError,
    DenoiserMeta,
    create,
    size_multiple,
)
from explorer.core.fileio import atomic_save
from explorer.core.resources import builtin_weights, present_builtins

META_KEY = "explorer.denoiser"
CLASSIFIER_META_KEY = "explorer.meta"  # what explorer.core.models writes

# name -> (what it is, the command that rebuilds its weights file)
# Both built-ins are fine-tuned the same way (1 epoch on the first 30 000
# official training images, lr 1e-3) from one base denoiser trained 1 epoch
# on all 60 000; only HAT's attack term differs, so comparing them is fair.
_BASE = ("scripts/train_denoisers.py IDX_DIR --method standard --epochs 1 "
         "--out base.safetensors && python ")
BUILTINS: dict[str, tuple[str, str]] = {
    "dncnn-fmnist-standard": (
        "DnCNN trained on Fashion-MNIST with Gaussian noise, sigma 0.1",
        _BASE + "scripts/train_denoisers.py IDX_DIR --method standard --init "
        "base.safetensors --n-train 30000 --lr 1e-3"),
    "dncnn-fmnist-hat": (
        "DnCNN trained on Fashion-MNIST with hybrid adversarial training (HAT) "
        "against ObsAtk, Gaussian noise sigma 0.1; trained as long as the "
        "standard one. On these small images it is only slightly more robust "
        "(+0.1 dB under ObsAtk): the attack's direction passes through any "
        "good denoiser almost unchanged, and HAT lowers that gain by ~5%",
        _BASE + "scripts/train_denoisers.py IDX_DIR --method hat --init "
        "base.safetensors --n-train 30000 --lr 1e-3 --hat-weight 8 --rho 0.88 "
        "--attack-steps 3"),
}
# The natural-photo pair (natural-patches): one base, then equal fine-tunes.
_NATURAL = "scripts/train_denoisers.py --data natural-patches "
_NATURAL_BASE = (_NATURAL + "--method standard --epochs 10 --out "
                 "natural-base.safetensors && python ")
BUILTINS.update({
    "dncnn-natural-standard": (
        "DnCNN trained on natural-photo patches (natural-patches) with Gaussian "
        "noise, sigma 0.1",
        _NATURAL_BASE + _NATURAL + "--method standard --init "
        "natural-base.safetensors --epochs 2"),
    "dncnn-natural-hat": (
        "DnCNN trained on natural-photo patches with hybrid adversarial training "
        "(HAT) against ObsAtk, Gaussian noise sigma 0.1; trained on exactly the "
        "same images and steps as dncnn-natural-standard",
        _NATURAL_BASE + _NATURAL + "--method hat --init natural-base.safetensors "
        "--epochs 2 --hat-weight 3 --rms 8 --attack-steps 1"),
})
# the data sets each built-in was trained for (the Denoiser Lab checks those)
BUILTIN_DATA = {
    "dncnn-fmnist-standard": ("fashion-mnist-mini", "fashion-mnist"),
    "dncnn-fmnist-hat": ("fashion-mnist-mini", "fashion-mnist"),
    "dncnn-natural-standard": ("natural-patches",),
    "dncnn-natural-hat": ("natural-patches",),
}


def save(model: nn.Module, path: str | os.PathLike[str],
         meta: DenoiserMeta | None = None) -> Path:
    meta = meta or getattr(model, "meta", None)
    if not isinstance(meta, DenoiserMeta):
        raise DenoiserError("cannot save: the model carries no denoiser metadata")
    meta = dataclasses.replace(meta, source="")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {META_KEY: meta.to_json()}
    blob = save_bytes(state, metadata=header)  # then a plain write: see models.save
    return atomic_save(path, lambda tmp: tmp.write_bytes(blob))


def load(path: str | os.PathLike[str]) -> nn.Module:
    """A denoiser file in eval mode on CPU; every failure names the file."""
    path = Path(path)
    if not path.is_file():
        raise DenoiserError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DenoiserError(f"{path}: not a denoiser file (expected safetensors "
                            f"with denoiser metadata: {exc})") from None
    if META_KEY not in header:
        if CLASSIFIER_META_KEY in header:
            raise DenoiserError(f"{path}: is a classifier, not a denoiser (a "
                                "denoiser maps an image to an image; load it as "
                                "a model instead)")
        raise DenoiserError(f"{path}: has no denoiser metadata ({META_KEY!r})")
    try:
        meta = DenoiserMeta.from_json(header[META_KEY])
    except DenoiserError as exc:
        raise DenoiserError(f"{path}: {exc}") from None
    if meta.kind != KIND:
        raise DenoiserError(f"{path}: kind is {meta.kind!r}, not {KIND!r}")
    try:
        model = create(meta.arch, in_shape=meta.in_shape, dataset=meta.dataset,
                       **meta.arch_params)
        model.load_state_dict(state)
    except (DenoiserError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise DenoiserError(f"{path}: weights do not fit {meta.arch} "
                            f"({first})") from None
    model.meta = dataclasses.replace(meta, source=str(path))
    return model.eval()


def check_input(model: nn.Module, x: Tensor) -> None:
    """Refuse images the denoiser cannot take, saying what it expects."""
    meta: DenoiserMeta = model.meta
    if x.dim() != 4:
        raise DenoiserError(f"expected a batch N×C×H×W, got shape {tuple(x.shape)}")
    c, h, w = x.shape[1:]
    expected = "×".join(map(str, meta.in_shape))
    if c != meta.channels:
        raise DenoiserError(f"image of size {c}×{h}×{w} does not fit the denoiser "
                            f"(trained on {expected} images; {meta.channels} "
                            f"channel(s) expected, got {c})")
    multiple = size_multiple(meta)
    if h % multiple or w % multiple:
        raise DenoiserError(f"image of size {c}×{h}×{w}: {meta.arch} needs height "
                            f"and width divisible by {multiple}")


def builtin_names() -> list[str]:
    """Built-in denoisers whose weights file is present."""
    return present_builtins(BUILTINS)


def builtins_for(data_name: str | None) -> list[str]:
    """The present built-ins trained for data set ``data_name``."""
    return [name for name in builtin_names()
            if data_name in BUILTIN_DATA.get(name, ())]


def describe(name: str) -> str:
    return BUILTINS[name][0] if name in BUILTINS else ""


def load_builtin(name: str) -> nn.Module:
    path = builtin_weights("denoiser", BUILTINS, name, DenoiserError)
    model = load(path)
    model.meta.source = name
    return model


def load_any(name_or_path: str) -> nn.Module:
    """A built-in denoiser by name, else a file path."""
    if name_or_path in BUILTINS:
        return load_builtin(name_or_path)
    return load(name_or_path)
