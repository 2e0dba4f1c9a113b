"""Input normalisation as the first layer, so every model takes [0, 1] pixels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Input normalisations people train with: a model that expects normalised
# input is wrapped with one, so attacks still work in [0, 1] pixel space.
PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "none": ((0.0,), (1.0,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # the training set's true per-channel std (0.2023, 0.1994, 0.2010, seen in
    # many repositories, is a widespread miscalculation; pass it with --std)
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


def parse_values(text: str, label: str = "values") -> tuple[float, ...]:
    """``"0.485, 0.456, 0.406"`` as floats: one or three numbers; a
    ValueError naming ``label`` and the text otherwise."""
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) not in (1, 3) or not all(v == v and abs(v) < 1e6 for v in values):
        raise ValueError(f"{label}: expected 1 or 3 comma-separated numbers, e.g. "
                         f"0.485, 0.456, 0.406; got {text.strip()!r}")
    return values


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; a single value applies to every channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        # On the CPU even under a default-device context (a model built on
        # the meta device to read its keys): the check below reads values.
        mean_t = torch.as_tensor(tuple(mean), dtype=torch.float32,
                                 device="cpu").reshape(-1, 1, 1)
        std_t = torch.as_tensor(tuple(std), dtype=torch.float32,
                                device="cpu").reshape(-1, 1, 1)
        if mean_t.numel() == 0 or mean_t.numel() != std_t.numel():
            raise ValueError("mean and std must be non-empty and of the same length")
        if bool((std_t <= 0).any()):
            raise ValueError("std must be positive")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def values(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std as Python floats (float32 precision, so 0.286 stays 0.286)."""
        return float32_values(self.mean), float32_values(self.std)

    def extra_repr(self) -> str:
        mean, std = self.values()
        return f"mean={mean}, std={std}"


def float32_values(t: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(f"{v:.7g}") for v in t.flatten().tolist())
