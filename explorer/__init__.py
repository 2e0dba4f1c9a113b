"""Robustness Explorer: craft adversarial examples, train defenses, compare them."""

from explorer._version import __version__

__all__ = ["__version__"]
