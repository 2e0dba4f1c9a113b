"""Minimal adversarial distance: DeepFool upper estimate + PGD binary search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from explorer.core import models
from explorer.core.analysis.distance import minimal_distance
from explorer.core.attacks.threat import RadiusBall
from explorer.core.jobs import Cancelled, CancelToken, Done, Progress, Snapshot
from explorer.core.params import ParamError

FAST = {"search_steps": 5, "pgd_steps": 10, "deepfool_steps": 20}
N = 24


def _run(model, dataset, **kw):
    events = list(minimal_distance(model, dataset, **kw))
    assert isinstance(events[-1], Done)
    return events, events[-1].results


@pytest.fixture(scope="module")
def test_set(sets):
    return sets[1]


@pytest.fixture(scope="module")
def standard_run(test_set):
    return _run(models.load_builtin("fmnist-cnn-standard"), test_set, n=N,
                batch_size=16, **FAST)


@pytest.fixture(scope="module")
def robust_run(test_set):
    return _run(models.load_builtin("fmnist-cnn-pgdat"), test_set, n=N, **FAST)


def test_robust_model_is_farther_from_its_boundary(standard_run, robust_run):
    standard, robust = standard_run[1]["median"], robust_run[1]["median"]
    # PGD-AT at eps 0.1 pushes most correct images beyond 0.1 in l-inf.
    assert robust > 2 * standard
    assert robust > 0.1 > standard


def test_arrays_are_consistent(standard_run, test_set):
    events, r = standard_run
    d, lower, df = r["distances"], r["lower"], r["deepfool"]
    for a in (d, lower, df):
        assert a.shape == (N,)
        assert a.dtype == np.float64
        assert np.isfinite(a).all()
    _, y = test_set.as_tensors(0, N)
    model = models.load_builtin("fmnist-cnn-standard")
    with torch.no_grad():
        correct = (model(test_set.as_tensors(0, N)[0]).argmax(1) == y).numpy()
    np.testing.assert_array_equal(r["correct"], correct)
    assert (d[~correct] == 0).all()
    ok = r["correct"] & r["broken"]
    # The search only tightens DeepFool's estimate and brackets the distance.
    assert (d[ok] <= df[ok] + 1e-6).all()
    assert (lower[ok] <= d[ok] + 1e-6).all()
    assert sum(r["hist_counts"]) == ok.sum()
    assert len(r["hist_edges"]) == len(r["hist_counts"]) + 1
    assert r["median"] == pytest.approx(float(np.median(d[ok])))
    # Two batches of 16 and 8: progress, and a snapshot per batch.
    assert any(isinstance(e, Progress) for e in events)
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert len(snaps) == 2
    assert len(snaps[-1].arrays["distances"]) == ok.sum()


def test_found_distance_is_attained(test_set):
    """PGD at the reported l2 distance (plus a hair) fools the image."""
    model = models.load_builtin("fmnist-cnn-standard")
    sub = TensorDataset(*test_set.as_tensors(0, 6))
    _, r = _run(model, sub, norm="l2", **FAST)
    ok = r["correct"] & r["broken"]
    assert ok.any()
    assert r["norm"] == "l2"
    assert r["cap"] == pytest.approx(28.0)
    assert (r["distances"][ok] < 3.0).all()  # standard model: small l2 distances


class _Constant(nn.Module):
    """Always predicts class 0; its gradient is zero everywhere."""

    def forward(self, x):
        return x.flatten(1).sum(1, keepdim=True) * 0 + torch.arange(10.0).flip(0)


def test_never_broken_images_are_reported_apart(test_set):
    x, y = test_set.as_tensors(0, 200)
    zeros = TensorDataset(x[y == 0][:3], y[y == 0][:3])
    _, r = _run(_Constant(), zeros, **FAST)
    assert r["n_unbroken"] == 3
    assert not r["broken"].any()
    assert np.isfinite(r["distances"]).all()
    assert (r["distances"] == r["cap"]).all()
    assert r["cap"] == 1.0
    assert np.isnan(r["median"])
    assert sum(r["hist_counts"]) == 0


def test_radius_ball_keeps_each_image_in_its_own_ball():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, 4, 4, generator=gen)
    radius = torch.tensor([0.0, 0.1, 0.3])
    for norm in ("linf", "l2"):
        ball = RadiusBall(norm, radius)
        x = ball.project(ball.random_start(x0, gen) + torch.randn(3, 1, 4, 4), x0)
        assert (ball.size(x - x0) <= radius + 1e-6).all()
        assert x.min() >= 0
        assert x.max() <= 1


def test_cancel_stops_the_job(test_set):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(minimal_distance(_Constant(), test_set, n=4, token=token))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"norm": "l1"}, "norm must be one of linf, l2, got 'l1'"),
    ({"search_steps": 0}, "search_steps must be in [1, 30], got 0"),
    ({"bins": 0}, "bins must be in [1, 1000], got 0"),
    ({"colour": 1}, "unknown parameter 'colour'"),
    ({"n": 0}, "n must be at least 1, got 0"),
])  # fmt: skip
def test_bad_inputs_name_the_problem(test_set, kwargs, message):
    with pytest.raises(ValueError) as info:
        list(minimal_distance(_Constant(), test_set, **kwargs))
    assert message in str(info.value)
    if "n" not in kwargs:
        assert isinstance(info.value, ParamError)
