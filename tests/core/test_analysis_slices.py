"""Image-space slices: the plane, the grid, the eps-ball and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.core import data, models
from explorer.core.analysis.slices import (
    ball_outline,
    image_slice,
    image_slice_job,
    orthonormal_plane,
)
from explorer.core.jobs import Cancelled, CancelToken, Done, Progress
from explorer.core.params import ParamError


@pytest.fixture(scope="module")
def case():
    model = models.load_builtin("fmnist-cnn-standard")
    ds = data.load("fashion-mnist-mini", "test")
    x, y = ds.as_tensors(0, 20)
    with torch.no_grad():
        pred = model(x).argmax(1)
    i = int((pred == y).nonzero()[0])  # an image the model gets right
    return model, x[i], int(y[i])


def test_directions_orthonormal_and_centre_keeps_the_class(case):
    model, x, y = case
    r = image_slice([model], x, y, grid=7, eps=0.1, steps=5)
    d = torch.from_numpy(r["directions"]).flatten(1)
    assert torch.allclose(d @ d.T, torch.eye(2), atol=1e-5)
    assert r["pred"].shape == (1, 7, 7)
    assert r["coords"][3] == 0.0
    assert r["pred"][0, 3, 3] == y
    # The first direction is the attack's: the adversarial point lies on it.
    a, b = r["adv_points"][0]
    assert a > 0
    assert abs(b) < 1e-4 * a
    assert r["adv_offplane"][0] < 1e-3
    assert float(r["ball_radius"]) == pytest.approx(np.linalg.norm(
        r["ball"], axis=1).max())


def test_two_models_share_the_plane_and_second_adv_direction(case):
    model, x, y = case
    other = models.load_builtin("fmnist-cnn-pgdat")
    events = list(image_slice_job([model, other], x, y, grid=3,
                                  directions="adv,adv", eps=0.1, steps=3))
    assert any(isinstance(e, Progress) for e in events)
    done = events[-1]
    assert isinstance(done, Done)
    assert done.results["models"] == 2
    assert done.results["centre_pred"] == [y, y]
    r = events[-2].arrays
    assert r["pred"].shape == (2, 3, 3)
    assert r["adv_points"].shape == (2, 2)


def test_ball_outline_reaches_eps_over_the_largest_coordinate():
    d = torch.zeros(2, 16)
    d[0] = 0.25  # sign-like: ‖d‖_inf = 1/√16
    d[1, 0] = 1.0  # a single pixel
    outline = ball_outline(d, eps=0.1, n=5)  # angles 0, π/2, π, 3π/2, 2π
    assert outline[0] == pytest.approx([0.1 / 0.25, 0.0], abs=1e-6)
    assert outline[1] == pytest.approx([0.0, 0.1], abs=1e-6)


def test_parallel_directions_are_refused():
    v = torch.ones(3, 4)
    with pytest.raises(ParamError, match="parallel"):
        orthonormal_plane(v, 2 * v)
    with pytest.raises(ParamError, match="first direction is zero"):
        orthonormal_plane(torch.zeros(3, 4), v)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": 1}, "grid must be an integer in \\[2, 2001\\], got 1"),
    ({"directions": "adv,up"}, "unknown direction 'up'"),
    ({"directions": ("adv",)}, "exactly two kinds, got 1"),
    ({"eps": 0.0}, "eps must be in \\(0, 1\\], got 0"),
    ({"span": -1.0}, "span must be positive"),
])
def test_bad_inputs_name_the_problem(case, kwargs, message):
    model, x, y = case
    with pytest.raises(ParamError, match=message):
        image_slice([model], x, y, **{"steps": 1, **kwargs})


def test_no_model_and_cancel(case):
    model, x, y = case
    with pytest.raises(ParamError, match="at least one model"):
        image_slice([], x, y)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(image_slice_job([model], x, y, grid=3, steps=1, token=token))
    assert not model.training
    assert all(p.requires_grad for p in model.parameters())
