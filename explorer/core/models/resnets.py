"""Residual networks: pre-activation ResNet-18 and Wide ResNet (WRN-d-k).

Both start with a stride-1 3×3 conv (CIFAR-style stems) and end in global
average pooling, so 28×28 and 32×32 inputs both work. The ``cifs`` arch params
(``cifs``, ``cifs_k``, ``cifs_temperature``) put a CIFS block after the final
BN-ReLU of the last stage (see ``cifs.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from explorer.core.models import cifs as cifs_block
from explorer.core.models.base import ImageClassifier


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, identity (or 1×1 conv) shortcut from the activation."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.dropout = dropout
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = F.relu(self.bn2(out))
        if self.dropout > 0:
            out = F.dropout(out, p=self.dropout, training=self.training)
        return self.conv2(out) + skip


def _stage(c_in: int, c_out: int, blocks: int, stride: int, dropout: float = 0.0):
    layers = [PreActBlock(c_in, c_out, stride, dropout)]
    layers += [PreActBlock(c_out, c_out, 1, dropout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _tail(channels: int, num_classes: int, **cifs: Any) -> list[nn.Module]:
    """Final BN-ReLU (then a CIFS block when ``cifs["cifs"]``), pooling."""
    return [
        nn.BatchNorm2d(channels),
        cifs_block.after(nn.ReLU(inplace=True), channels, num_classes, **cifs),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]


class PreActResNet18(ImageClassifier):
    """He et al. (2016) identity-mapping ResNet-18; ``width`` channels at stage 1."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        width: int = 64,
        **cifs: Any,
    ) -> None:
        super().__init__(mean, std)
        w = (width, 2 * width, 4 * width, 8 * width)
        self.body = nn.Sequential(
            nn.Conv2d(in_shape[0], w[0], 3, padding=1, bias=False),
            _stage(w[0], w[0], 2, 1),
            _stage(w[0], w[1], 2, 2),
            _stage(w[1], w[2], 2, 2),
            _stage(w[2], w[3], 2, 2),
            *_tail(w[3], num_classes, **cifs),
        )
        self.head = nn.Linear(w[3], num_classes)


class WideResNet(ImageClassifier):
    """Zagoruyko & Komodakis (2016): three stages of (depth-4)/6 blocks, k× wide."""

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        depth: int = 16,
        widen_factor: int = 4,
        dropout: float = 0.0,
        **cifs: Any,
    ) -> None:
        super().__init__(mean, std)
        if (depth - 4) % 6 != 0:
            raise ValueError(wrn_depth_problem(depth))
        n = (depth - 4) // 6
        w = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.body = nn.Sequential(
            nn.Conv2d(in_shape[0], w[0], 3, padding=1, bias=False),
            _stage(w[0], w[1], n, 1, dropout),
            _stage(w[1], w[2], n, 2, dropout),
            _stage(w[2], w[3], n, 2, dropout),
            *_tail(w[3], num_classes, **cifs),
        )
        self.head = nn.Linear(w[3], num_classes)


def wrn_depth_problem(depth: int) -> str:
    return (
        f"depth must satisfy (depth - 4) % 6 == 0 (10, 16, 22, 28, 34, 40, ...), "
        f"got {depth}"
    )
