"""Reverse cross-entropy (RCE) training and the kernel-density detector.

Pang et al. (NeurIPS 2018), "Towards Robust Detection of Adversarial
Examples". Phase 1 trains logits Z to minimise L_RCE = -R_y · log softmax(Z),
R_y the reverse label (0 at y, 1/(L-1) elsewhere); phase 2 predicts from the
negated logits softmax(-Z). Here the model's own output *is* -Z (its linear
head absorbs the sign), so the trained model predicts directly, saves and
loads as its plain architecture, and the loss is taken on Z = -model(x).

``KDensityDetector`` is Feinman et al.'s (2017) kernel density on the
penultimate features, which RCE makes more informative:
KD(x) = 1/|X_ŷ| Σ_{x_i ∈ X_ŷ} exp(-‖z(x) - z(x_i)‖² / σ²) over the correctly
classified training samples of the predicted class ŷ; a low density flags an
adversarial input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.core.defenses.base import Defense


def reverse_labels(y: Tensor, num_classes: int) -> Tensor:
    """R_y: 0 at the true label and 1/(L-1) at every other one."""
    out = torch.full((len(y), num_classes), 1.0 / (num_classes - 1), device=y.device)
    out[torch.arange(len(y), device=y.device), y] = 0.0
    return out


def rce_loss(z: Tensor, y: Tensor) -> Tensor:
    """Mean -R_y · log softmax(Z) over the batch, Z the training-phase logits."""
    return -(reverse_labels(y, z.shape[1]) * F.log_softmax(z, dim=1)).sum(1).mean()


class ReverseCrossEntropy(Defense):
    name = "rce"
    title = "Reverse cross-entropy (RCE)"
    params = ()
    description = ("Pang et al. 2018: minimise the cross-entropy against the "
                   "reverse label (0 at y, 1/(L-1) elsewhere), predict from the "
                   "negated logits; pairs with the kernel-density detector "
                   "(explorer.core.defenses.rce.KDensityDetector).")

    def loss(self, model, x, y, generator):
        logits = model(x)  # the test-phase (negated) logits -Z
        return rce_loss(-logits, y), logits


@torch.no_grad()
def _features(model: nn.Module, x: Tensor, batch: int = 512) -> tuple[Tensor, Tensor]:
    """(penultimate features, predicted labels), computed in eval mode."""
    was_training = model.training
    model.eval()
    try:
        feats, preds = [], []
        for i in range(0, len(x), batch):
            z = model.features(x[i:i + batch])
            feats.append(z)
            preds.append(model.head(z).argmax(1))
        return torch.cat(feats), torch.cat(preds)
    finally:
        model.train(was_training)


class KDensityDetector:
    """Kernel density of penultimate features per predicted class.

    ``bandwidth`` is σ; ``None`` picks the median distance between training
    features of the same class. ``score(x)`` is log KD(x) (higher = more
    typical); ``is_adversarial(x)`` is ``score(x) < threshold``.
    """

    def __init__(self, model: nn.Module, train_x: Tensor, train_y: Tensor,
                 bandwidth: float | None = None) -> None:
        self.model = model
        feats, preds = _features(model, train_x)
        train_y = train_y.to(preds.device)
        correct = preds == train_y
        self.num_classes = int(train_y.max()) + 1
        self.class_features = [feats[correct & (train_y == c)]
                               for c in range(self.num_classes)]
        if bandwidth is None:
            bandwidth = self._median_distance()
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        self.bandwidth = float(bandwidth)
        self.threshold: float | None = None

    def _median_distance(self) -> float:
        dists = [torch.pdist(f[:256]) for f in self.class_features if len(f) > 1]
        values = torch.cat(dists) if dists else torch.ones(1)
        return max(float(values.median()), 1e-6)

    def score_features(self, z: Tensor, pred: Tensor) -> Tensor:
        """log KD for features ``z`` against the classes ``pred``."""
        out = torch.full((len(z),), -math.inf, device=z.device)
        for c in pred.unique().tolist():
            ref = self.class_features[c] if c < self.num_classes else z[:0]
            rows = pred == c
            if len(ref) == 0:
                continue
            sq = torch.cdist(z[rows], ref.to(z.device)).square()
            out[rows] = (torch.logsumexp(-sq / self.bandwidth ** 2, dim=1)
                         - math.log(len(ref)))
        return out

    def score(self, x: Tensor) -> Tensor:
        """log kernel density of each input's features for its predicted class."""
        z, pred = _features(self.model, x)
        return self.score_features(z, pred)

    def fit_threshold(self, clean_x: Tensor, fpr: float = 0.05) -> float:
        """Threshold flagging a fraction ``fpr`` of ``clean_x`` as adversarial."""
        scores = self.score(clean_x).clamp_min(torch.finfo(torch.float32).min)
        self.threshold = float(torch.quantile(scores.double(), fpr))
        return self.threshold

    def is_adversarial(self, x: Tensor) -> Tensor:
        if self.threshold is None:
            raise RuntimeError("call fit_threshold(clean_x) first")
        return self.score(x) < self.threshold
