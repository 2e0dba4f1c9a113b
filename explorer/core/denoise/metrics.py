"""Image quality: PSNR and SSIM from scikit-image's reference implementations.

Images are C×H×W (or N×C×H×W batches) with a data range of 1. Nothing is
clipped: a Gaussian observation keeps its values outside [0, 1], so the noisy
input at sigma 0.1 scores 20 dB, the convention of the denoising literature.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor

from explorer.core.denoise.registry import DenoiserError


def _pairs(clean: Tensor | np.ndarray, test: Tensor | np.ndarray):
    a = clean.detach().cpu().numpy() if isinstance(clean, Tensor) else clean
    b = test.detach().cpu().numpy() if isinstance(test, Tensor) else test
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise DenoiserError(f"cannot compare images of different sizes: "
                            f"{'×'.join(map(str, a.shape))} and "
                            f"{'×'.join(map(str, b.shape))}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4:
        raise DenoiserError(f"expected C×H×W images or N×C×H×W batches, got "
                            f"shape {a.shape}")
    return a, b


def psnr(clean, test) -> np.ndarray:
    """PSNR in dB per image (``inf`` for identical images)."""
    a, b = _pairs(clean, test)
    out = []
    for ai, bi in zip(a, b, strict=True):
        if np.array_equal(ai, bi):
            out.append(np.inf)  # skimage divides by zero here
        else:
            out.append(peak_signal_noise_ratio(ai, bi, data_range=1.0))
    return np.asarray(out, dtype=np.float64)


def ssim(clean, test) -> np.ndarray:
    """SSIM per image (channels as the last axis for colour images)."""
    a, b = _pairs(clean, test)
    out = []
    for ai, bi in zip(a, b, strict=True):
        if ai.shape[0] == 1:
            out.append(structural_similarity(ai[0], bi[0], data_range=1.0))
        else:
            out.append(structural_similarity(np.moveaxis(ai, 0, -1),
                                             np.moveaxis(bi, 0, -1),
                                             data_range=1.0, channel_axis=-1))
    return np.asarray(out, dtype=np.float64)
