"""Which per-epoch figures are a training method's own (plain Python: the
front ends read it without importing torch)."""

from __future__ import annotations

# The figures every run reports per epoch; anything else a method adds
# (``Defense.extra_scores``) is the method's own.
STANDARD_FIGURES = ("val_clean_acc", "val_robust_acc", "test_clean_acc",
                    "test_robust_acc")  # fmt: skip


def method_figure(name: str) -> bool:
    """An epoch metric a method reports of its own (``val_union_acc`` ...):
    a validation or test accuracy other than the standard four."""
    return (name.startswith(("val_", "test_")) and name.endswith("_acc")
            and name not in STANDARD_FIGURES)
