"""Speed-ups that only pay on GPUs: channels-last memory and mixed precision.

- :func:`place` moves a model to its device and, on CUDA, stores convolution
  weights channels-last (NHWC), the layout tensor cores read fastest; a conv
  with channels-last weights produces channels-last activations whatever the
  input layout, so inputs need no conversion.
- :class:`Autocast` runs a model's forward pass under ``torch.autocast``
  (bfloat16 where the device supports it, else float16 on CUDA) and returns
  float32 logits, so losses, gradients with respect to the input and every
  projection stay in full precision. bfloat16 keeps float32's exponent range,
  so input gradients do not underflow and no loss scaling is needed.

Both are off on CPU by default: there they cost time (a layout conversion per
layer, and bfloat16 matmuls are slower than float32 on most CPUs).
``EXPLORER_AMP=1`` turns mixed precision on for attacks by default.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def place(model: nn.Module, device: torch.device | str, *,
          channels_last: bool | None = None) -> nn.Module:
    """``model.to(device)``, channels-last on CUDA for conv nets.

    ``channels_last=None`` decides by device; ``True`` forces it (tests run
    the layout on CPU), ``False`` keeps the default layout.
    """
    device = torch.device(device)
    model = model.to(device)
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last and has_conv(model):
        model = model.to(memory_format=torch.channels_last)
    return model


def amp_dtype(device: torch.device | str) -> torch.dtype:
    """The autocast type for ``device``: bfloat16 if supported, else float16."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def amp_default() -> bool:
    return os.environ.get("EXPLORER_AMP", "").strip().lower() in ("1", "true", "yes")


class Autocast(nn.Module):
    """Forward under autocast, float32 out. Parameters stay those of
    ``inner`` (freezing, ``eval()`` and state dicts pass through)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    # The wrapper has no mode of its own: reading or restoring ``training``
    # (as the attacks' model_frozen does) must see the wrapped model's.
    @property
    def training(self) -> bool:  # type: ignore[override]
        inner = self._modules.get("inner")
        return True if inner is None else inner.training

    @training.setter
    def training(self, mode: bool) -> None:
        inner = self._modules.get("inner") if "_modules" in self.__dict__ else None
        if inner is not None:
            inner.training = mode

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, dtype=amp_dtype(x.device)):
            out = self.inner(x)
        return out.float()

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("inner"), name)
