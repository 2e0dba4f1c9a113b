"""Certified robustness and adversarial-example detection."""
