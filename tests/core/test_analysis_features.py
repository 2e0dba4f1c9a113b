"""Feature views: PCA, exact t-SNE, clean vs adversarial, MMC centres."""

from __future__ import annotations

import pytest
import torch

from explorer.core import models
from explorer.core.analysis.features import (
    _affinities,
    feature_projection,
    mmc_centres,
    pca,
    tsne,
)
from explorer.core.defenses.mmc import MaxMahalanobisCenter
from explorer.core.params import ParamError


@pytest.fixture(autouse=True)
def _one_thread():
    """Small matrices gain nothing from intra-op threads; on a busy machine
    the threads only wait for each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def clusters(n_per: int = 30, dim: int = 20, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = 6 * torch.randn(3, dim, generator=g)
    labels = torch.arange(3).repeat_interleave(n_per)
    return centres[labels] + torch.randn(len(labels), dim, generator=g), labels


def separated(points: torch.Tensor, labels: torch.Tensor) -> bool:
    """Every point is nearer its own cluster's mean than any other mean."""
    means = torch.stack([points[labels == k].mean(0) for k in range(3)])
    return bool((torch.cdist(points, means).argmin(1) == labels).all())


def test_pca_separates_clusters_and_orders_variance():
    points, labels = clusters()
    mean, comps, ratio = pca(points)
    assert comps.shape == (2, points.shape[1])
    assert torch.allclose(comps @ comps.T, torch.eye(2), atol=1e-5)
    assert ratio[0] >= ratio[1] > 0
    assert separated((points - mean) @ comps.T, labels)


def test_affinities_match_the_perplexity():
    points, _ = clusters()
    p = _affinities(torch.cdist(points, points).double().square(), 10.0)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(1)
    assert torch.allclose(entropy.exp(), torch.full((len(p),), 10.0,
                                                    dtype=torch.float64), rtol=1e-3)
    assert torch.allclose(p.sum(1), torch.ones(len(p), dtype=torch.float64))


def test_tsne_shape_and_clusters():
    points, labels = clusters()
    emb = tsne(points, perplexity=10, iterations=300)
    assert emb.shape == (len(points), 2)
    assert torch.isfinite(emb).all()
    assert separated(emb, labels)
    with pytest.raises(ParamError, match="perplexity must be in"):
        tsne(points, perplexity=500)


def tiny():
    torch.manual_seed(0)
    return models.create("small-cnn", in_shape=(1, 8, 8), num_classes=3, width=2,
                         dense=8)


def test_projection_of_clean_and_adversarial_features():
    model = tiny()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(12) % 3
    r = feature_projection(model, x, y, eps=0.1, steps=2)
    assert r["clean"].shape == r["adv"].shape == (12, 2)
    assert r["pred_adv"].shape == r["pred_clean"].shape == (12,)
    assert "centres" not in r
    assert r["explained"].shape == (2,)
    r = feature_projection(model, x, y, method="tsne", adversarial=False,
                           perplexity=3, iterations=50)
    assert r["clean"].shape == (12, 2)
    assert "adv" not in r


def test_mmc_model_shows_its_centres():
    model = MaxMahalanobisCenter().prepare(tiny())
    assert mmc_centres(model).shape == (3, 8)
    assert mmc_centres(tiny()) is None
    x = torch.rand(6, 1, 8, 8)
    r = feature_projection(model, x, torch.arange(6) % 3, adversarial=False)
    assert r["centres"].shape == (3, 2)


def test_bad_inputs():
    model = tiny()
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(ParamError, match="method must be one of pca, tsne"):
        feature_projection(model, x, torch.zeros(4, dtype=torch.int64),
                           method="umap")
    with pytest.raises(ParamError, match="at least 2 images"):
        feature_projection(model, x[:1], torch.zeros(1, dtype=torch.int64))
