"""Certified robustness and statistical guarantees under attack."""
