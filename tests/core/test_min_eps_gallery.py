"""The gallery's data: each image's minimal eps with the example found at it,
and the images that break at a budget, smallest minimal eps first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from explorer.core import models
from explorer.core.analysis.distance import minimal_distance
from explorer.core.analysis.min_eps_gallery import breaking_at, min_eps_examples
from explorer.core.attacks.threat import RadiusBall
from explorer.core.jobs import Cancelled, CancelToken, Done, Progress, run_to_end
from explorer.core.params import ParamError

FAST = {"search_steps": 4, "pgd_steps": 8, "deepfool_steps": 20}
N = 12


@pytest.fixture(scope="module")
def model():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def subset(sets):
    return TensorDataset(*sets[1].as_tensors(0, N))


@pytest.fixture(scope="module")
def linf(model, sets):
    events = list(min_eps_examples(model, sets[1], n=N, batch_size=10, **FAST))
    assert isinstance(events[-1], Done)
    assert any(isinstance(e, Progress) for e in events)
    return events[-1].results


def test_min_eps_is_the_searchs_distance_and_its_example_is_that_far(
        model, sets, linf):
    x, y = sets[1].as_tensors(0, N)
    # The same search (same seed) without keeping the examples: same numbers.
    plain = run_to_end(minimal_distance(model, sets[1], n=N, batch_size=10, **FAST))
    assert "x_adv" not in plain
    ok = plain["correct"] & plain["broken"]
    assert ok.sum() >= N // 2
    np.testing.assert_array_equal(linf["min_eps"][ok], plain["distances"][ok])
    assert (linf["min_eps"][~plain["correct"]] == 0).all()
    np.testing.assert_array_equal(linf["x"], x.numpy())
    np.testing.assert_array_equal(linf["y"], y.numpy())
    with torch.no_grad():
        clean = model(x).argmax(1).numpy()
        adv = model(torch.from_numpy(linf["x_adv"])).argmax(1).numpy()
    np.testing.assert_array_equal(linf["pred_clean"], clean)
    np.testing.assert_array_equal(linf["pred_adv"], adv)
    assert (adv[ok] != y.numpy()[ok]).all()  # each example fools the model
    size = RadiusBall("linf", torch.ones(N)).size(
        torch.from_numpy(linf["x_adv"]) - x).numpy()
    np.testing.assert_allclose(size[ok], linf["min_eps"][ok], atol=1e-6)
    assert linf["x_adv"].min() >= 0
    assert linf["x_adv"].max() <= 1


def test_breaking_at_sorts_by_min_eps_and_stays_within_the_budget(linf):
    eps = float(np.median(linf["min_eps"][linf["correct"]]))
    picked = breaking_at(linf, eps)
    shown = linf["min_eps"][picked.indices]
    assert len(picked.indices) == picked.count > 0
    assert (np.diff(shown) >= 0).all()
    assert (shown <= eps).all()
    assert linf["correct"][picked.indices].all()  # already-wrong ones left out
    rest = np.setdiff1d(np.flatnonzero(linf["correct"]), picked.indices)
    assert (linf["min_eps"][rest] > eps).all()
    assert picked.n_wrong == int((~linf["correct"]).sum())
    assert picked.n_correct + picked.n_wrong == picked.n == N
    capped = breaking_at(linf, eps, limit=2)
    np.testing.assert_array_equal(capped.indices, picked.indices[:2])
    assert capped.count == picked.count
    assert breaking_at(linf, 0.0).count == 0  # correct images need some budget
    assert breaking_at(linf, 1.0).count == picked.n_correct - picked.n_unbroken


def test_l2_and_a_loader_in_place_of_the_model(subset):
    r = run_to_end(min_eps_examples(
        lambda: models.load_builtin("fmnist-cnn-standard"), subset, n=6,
        norm="l2", device="cpu", **FAST))
    ok = r["correct"] & r["broken"]
    assert ok.any()
    assert r["norm"] == "l2"
    size = RadiusBall("l2", torch.ones(6)).size(
        torch.from_numpy(r["x_adv"] - r["x"])).numpy()
    np.testing.assert_allclose(size[ok], r["min_eps"][ok], atol=1e-5)


def test_unbroken_images_have_infinite_min_eps_and_are_never_shown():
    result = {"min_eps": np.array([0.0, 0.05, np.inf, 0.01]),
              "correct": np.array([False, True, True, True]),
              "broken": np.array([True, True, False, True])}
    picked = breaking_at(result, 1.0)
    np.testing.assert_array_equal(picked.indices, [3, 1])
    assert (picked.n_wrong, picked.n_unbroken, picked.count) == (1, 1, 2)


def test_cancel_and_bad_values_say_what_is_wrong(model, subset, linf):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(min_eps_examples(model, subset, n=4, token=token))
    with pytest.raises(ParamError, match="norm must be one of linf, l2, got 'l1'"):
        list(min_eps_examples(model, subset, norm="l1"))
    with pytest.raises(ParamError, match="search_steps must be in"):
        list(min_eps_examples(model, subset, search_steps=0))
    with pytest.raises(ParamError, match=r"eps must be a number ≥ 0, got -0\.1"):
        breaking_at(linf, -0.1)
    with pytest.raises(ParamError, match="limit must be ≥ 0, got -1"):
        breaking_at(linf, 0.1, limit=-1)
