"""Compute: plain PyTorch and NumPy, never Qt. Scripts and the CLI use it alone."""
