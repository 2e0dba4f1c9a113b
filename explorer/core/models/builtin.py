"""Pretrained models shipped in ``explorer/resources/models/``."""

from __future__ import annotations

from torch import nn

from explorer.core.models.files import load
from explorer.core.models.meta import ModelError
from explorer.core.resources import builtin_weights, present_builtins

# name -> (what it is, the script that rebuilds its weights file)
BUILTINS: dict[str, tuple[str, str]] = {
    "fmnist-cnn-standard": (
        "small-cnn trained on Fashion-MNIST without any defense",
        "scripts/train_builtin.py",
    ),
    "fmnist-cnn-pgdat": (
        "small-cnn (width 32) trained on Fashion-MNIST with PGD adversarial "
        "training, eps 0.1",
        "scripts/train_robust_builtins.py --method pgd-at",
    ),
    "fmnist-cnn-trades": (
        "small-cnn (width 32) trained on Fashion-MNIST with TRADES, eps 0.1",
        "scripts/train_robust_builtins.py --method trades",
    ),
    "fmnist-cnn-gaussian": (
        "small-cnn trained on Fashion-MNIST with Gaussian noise sigma 0.25, the "
        "base classifier of randomized smoothing",
        "scripts/train_gaussian_builtin.py",
    ),
    "fmnist-cnn-rce": (
        "small-cnn trained on Fashion-MNIST with reverse cross-entropy (Pang et "
        "al. 2018), the model for the non-maximal-entropy detector",
        "scripts/train_rce_builtin.py",
    ),
}


def builtin_names() -> list[str]:
    """Built-in models whose weights file is present."""
    return present_builtins(BUILTINS)


def describe(name: str) -> str:
    return BUILTINS[name][0] if name in BUILTINS else ""


def load_builtin(name: str) -> nn.Module:
    """A built-in pretrained model in eval mode; ``meta.source`` is its name."""
    path = builtin_weights("model", BUILTINS, name, ModelError)
    model = load(path)
    model.meta.source = name
    return model
