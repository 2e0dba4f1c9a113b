"""CIFS: channel-wise importance-based feature selection (Yan et al., ICML 2021).

Yan, Zhang, Niu, Feng, Tan & Sugiyama, "CIFS: Improving Adversarial Robustness
of CNNs via Channel-wise Importance-based Feature Selection" (arXiv 2102.05311,
Sec. 4; the authors' code, github.com/HanshuYAN/CIFS, models/nets/resnet_CIFS.py).
After a convolutional stage with features z (N, C, H, W) the block

1. runs a *probe* A (global average pooling + a linear classifier on the C
   channels) and gets raw logits p = A(z) — the paper's "probe network";
2. assesses each channel's *relevance* g_c as the gradient of the probe's
   top-k logits, weighted by their softmax probabilities, with respect to the
   channel's pooled value: g = ∂(Σ_{j ∈ top-k} π_j · p_j) / ∂ z̄, the weights
   π = softmax(p) taken as constants. For a linear probe on pooled features
   this gradient is exactly Σ_j π_j · W_j, which is what is computed
   (``tests/core/test_cifs.py`` checks it against autograd); it also works
   under ``torch.no_grad`` and in eval. The mask, as a function of the input,
   is then differentiated in full (through π too): the authors' code takes
   the gradient on detached features, which hides the mask's dependence on
   the input from gradient attacks; here PGD sees the exact gradient (but
   for the top-k choice, which is piecewise constant);
3. turns relevances into an importance mask m = C · softmax(g / T) over the
   channels (non-negative, mean 1; the paper's "IMGF") and returns z · m.

Training (the ``cifs`` defense) adds β · CE(probe logits) to the PGD-AT loss
so the probe learns to predict; the probe's logits are collected with
:func:`probe_logits` while the model's forward still returns logits only.

Here the block sits after the last convolutional stage (after its activation,
before pooling) of ``small-cnn``, ``preact-resnet18`` and ``wide-resnet``
(arch param ``cifs=true``): it wraps a parameter-free activation, so every
other weight keeps its name and a plain model's weights load into the CIFS
variant. Unlike the authors' training-mode mask, which uses the true label as
the top logit, the mask here never sees labels (train and test alike).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.params import Param

ARCHITECTURES = ("small-cnn", "preact-resnet18", "wide-resnet")
PARAMS = (
    Param("cifs", bool, False, "CIFS channel selection after the last conv stage "
          "(Yan et al. 2021)"),
    Param("cifs_k", int, 10, "CIFS: top-k probe logits whose gradient rates the "
          "channels", minimum=1, maximum=10000),
    Param("cifs_temperature", float, 1.0, "CIFS: softmax temperature of the "
          "channel mask", minimum=0.001, maximum=1000.0),
)


class CIFS(nn.Module):
    """Probe, relevance and mask on ``channels`` feature maps (module doc).

    ``last_mask`` (N, C) and ``last_probe`` (N, classes) keep the latest
    forward's mask and probe logits, detached, for inspection.
    """

    def __init__(self, channels: int, num_classes: int, k: int = 10,
                 temperature: float = 1.0) -> None:
        super().__init__()
        self.probe = nn.Linear(channels, num_classes)
        self.k = int(k)
        self.temperature = float(temperature)
        self.last_mask: Tensor | None = None
        self.last_probe: Tensor | None = None
        self._sink: list[Tensor] | None = None

    def probe_logits(self, z: Tensor) -> Tensor:
        """The probe's raw prediction from the channels' spatial means."""
        return self.probe(z.mean(dim=(2, 3)))

    def relevance(self, logits: Tensor) -> Tensor:
        """(N, C): ∂(Σ_{top-k} softmax(p)_j · p_j) / ∂(pooled channel), the
        softmax weights held constant; exact for the linear probe. The result
        keeps its graph to ``logits`` (through the weights) and the probe."""
        probs = F.softmax(logits, dim=1)
        top = probs.topk(min(self.k, probs.shape[1]), dim=1)
        weights = torch.zeros_like(probs).scatter(1, top.indices, top.values)
        return weights @ self.probe.weight

    def mask(self, relevance: Tensor) -> Tensor:
        """C · softmax(relevance / T) over channels: non-negative, mean 1."""
        return relevance.shape[1] * F.softmax(relevance / self.temperature, dim=1)

    def forward(self, z: Tensor) -> Tensor:
        logits = self.probe_logits(z)
        mask = self.mask(self.relevance(logits))
        self.last_mask, self.last_probe = mask.detach(), logits.detach()
        if self._sink is not None:
            self._sink.append(logits)
        return z * mask[:, :, None, None]

    def extra_repr(self) -> str:
        return f"k={self.k}, temperature={self.temperature:g}"


def after(activation: nn.Module, channels: int, num_classes: int, *,
          cifs: bool = False, cifs_k: int = 10,
          cifs_temperature: float = 1.0) -> nn.Module:
    """``activation`` followed by a CIFS block when ``cifs`` (else itself)."""
    if not cifs:
        return activation
    return nn.Sequential(activation, CIFS(channels, num_classes, cifs_k,
                                          cifs_temperature))


def blocks(model: nn.Module) -> list[CIFS]:
    """The CIFS blocks of ``model`` (empty for a plain model)."""
    return [m for m in model.modules() if isinstance(m, CIFS)]


@contextmanager
def probe_logits(model: nn.Module) -> Iterator[list[Tensor]]:
    """Inside, every forward of ``model`` appends each block's probe logits
    (with their graph, for the probe loss) to the yielded list."""
    found = blocks(model)
    collected: list[Tensor] = []
    for block in found:
        block._sink = collected
    try:
        yield collected
    finally:
        for block in found:
            block._sink = None


@torch.no_grad()
def channel_importance(model: nn.Module, x: Tensor) -> Tensor:
    """The first CIFS block's mask for the batch ``x``, (N, C) on the CPU,
    with the model in eval mode (its mode is restored); ValueError when the
    model has no CIFS block. The model's output is not changed."""
    found = blocks(model)
    if not found:
        raise ValueError(f"{type(model).__name__} has no CIFS block")
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
    mask = found[0].last_mask
    assert mask is not None
    return mask.float().cpu()
