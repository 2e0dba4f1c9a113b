"""Denoiser architectures: a DnCNN-style residual network and a small U-Net.

Both are residual: the body predicts the noise and the output is the input
minus that prediction (Zhang et al., DnCNN). The body's last layer starts at
zero, so an untrained denoiser is exactly the identity, in train and eval
mode alike. With PyTorch's default init a DnCNN with batch norm started at
7-10 dB on noisy Fashion-MNIST (sigma 0.1, 20 dB) in train mode, where batch
statistics scale the hidden activations up to unit variance, and a U-Net at
8-15 dB; a short training run then ended below the noisy input. Inputs and
outputs are pixel images N×C×H×W; a noisy input may leave [0, 1] (Gaussian
noise is not clipped), the output is not clamped so the reconstruction error
stays differentiable everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _zero(conv: nn.Conv2d) -> nn.Conv2d:
    """The noise-predicting layer starts at zero (see the module doc); its
    weights still get gradients, so training moves it at the first step."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class DnCNN(nn.Module):
    """conv+ReLU, ``depth - 2`` × (conv+BN+ReLU), conv; output = v - body(v)."""

    def __init__(self, channels: int = 1, depth: int = 8, width: int = 32,
                 batch_norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1),
                                   nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
        layers.append(_zero(nn.Conv2d(width, channels, 3, padding=1)))
        self.body = nn.Sequential(*layers)

    def noise(self, v: Tensor) -> Tensor:
        """The predicted noise."""
        return self.body(v)

    def forward(self, v: Tensor) -> Tensor:
        return v - self.body(v)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A small U-Net: ``levels`` poolings, channels doubling per level.

    Height and width must be divisible by ``2**levels`` (checked by
    :func:`explorer.core.denoise.files.check_input` with a clear message).
    """

    def __init__(self, channels: int = 1, width: int = 16, levels: int = 2) -> None:
        super().__init__()
        self.levels = levels
        widths = [width * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList()
        cin = channels
        for w in widths[:-1]:
            self.down.append(_block(cin, w))
            cin = w
        self.bottom = _block(widths[-2], widths[-1])
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w_low, w in zip(widths[:0:-1], widths[-2::-1], strict=True):
            self.up.append(nn.ConvTranspose2d(w_low, w, 2, stride=2))
            self.merge.append(_block(2 * w, w))
        self.head = _zero(nn.Conv2d(widths[0], channels, 1))

    def noise(self, v: Tensor) -> Tensor:
        skips = []
        h = v
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = nn.functional.max_pool2d(h, 2)
        h = self.bottom(h)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            h = merge(torch.cat([up(h), skip], dim=1))
        return self.head(h)

    def forward(self, v: Tensor) -> Tensor:
        return v - self.noise(v)
