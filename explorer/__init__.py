"""Robustness Explorer: craft adversarial examples, train defenses, compare them."""

__version__ = "0.1.0"
