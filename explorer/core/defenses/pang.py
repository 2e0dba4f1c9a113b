"""Tianyu Pang's training methods, gathered for the registry: MMC, ADP, RCE."""

from explorer.core.defenses.adp import AdaptiveDiversityPromoting
from explorer.core.defenses.mmc import MaxMahalanobisCenter
from explorer.core.defenses.rce import ReverseCrossEntropy

__all__ = ["AdaptiveDiversityPromoting", "MaxMahalanobisCenter",
           "ReverseCrossEntropy"]
