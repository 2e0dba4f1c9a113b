"""Pretrained models shipped in ``resources/models/``."""

from __future__ import annotations

from torch import nn

from explorer.core.models.files import load
from explorer.core.models.meta import ModelError
from explorer.core.resources import resource_path

# name -> (what it is, the script that rebuilds its weights file)
BUILTINS: dict[str, tuple[str, str]] = {
    "fmnist-cnn-standard": (
        "small-cnn trained on Fashion-MNIST without any defense",
        "scripts/train_builtin.py",
    ),
    "fmnist-cnn-pgdat": (
        "small-cnn trained on Fashion-MNIST with PGD adversarial training, eps 0.1",
        "scripts/train_robust_builtins.py --method pgd-at",
    ),
    "fmnist-cnn-trades": (
        "small-cnn trained on Fashion-MNIST with TRADES, eps 0.1",
        "scripts/train_robust_builtins.py --method trades",
    ),
}


def _file(name: str):
    return resource_path("models", f"{name}.safetensors")


def builtin_names() -> list[str]:
    """Built-in models whose weights file is present."""
    return [name for name in BUILTINS if _file(name).is_file()]


def describe(name: str) -> str:
    return BUILTINS[name][0] if name in BUILTINS else ""


def load_builtin(name: str) -> nn.Module:
    """A built-in pretrained model in eval mode; ``meta.source`` is its name."""
    if name not in BUILTINS:
        known = ", ".join(builtin_names()) or "none installed"
        raise ModelError(f"unknown built-in model {name!r} (available: {known})")
    path = _file(name)
    if not path.is_file():
        raise ModelError(
            f"built-in model {name!r}: weights file {path} is missing; "
            f"rebuild it with `python {BUILTINS[name][1]}`"
        )
    model = load(path)
    model.meta.source = name
    return model
