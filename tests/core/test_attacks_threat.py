"""Threat models: projections land in ball ∩ box, are idempotent, and exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from explorer.core.attacks.threat import (
    THREATS,
    L1Ball,
    L2Ball,
    LinfBall,
    make_threat,
    project_l1_box,
)

EPS = {"linf": 0.1, "l2": 1.0, "l1": 3.0}


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(6, 1, 8, 8, generator=g)
    far = (x0 + torch.randn(6, 1, 8, 8, generator=g)).clamp(-1, 2)
    return x0, far, g


@pytest.mark.parametrize("norm", list(THREATS))
def test_project_lands_inside_and_is_idempotent(norm, batch):
    x0, far, _ = batch
    threat = make_threat(norm, EPS[norm])
    p = threat.project(far, x0)
    assert p.min() >= 0
    assert p.max() <= 1
    assert (threat.size(p - x0) <= EPS[norm] * (1 + 1e-4) + 1e-6).all()
    assert torch.allclose(threat.project(p, x0), p, atol=1e-5)


@pytest.mark.parametrize("norm", list(THREATS))
def test_points_inside_are_left_alone(norm, batch):
    x0, _, g = batch
    threat = make_threat(norm, EPS[norm])
    inside = threat.random_start(x0, g)
    assert (threat.size(inside - x0) <= EPS[norm] * (1 + 1e-4)).all()
    assert torch.allclose(threat.project(inside, x0), inside, atol=1e-5)


@pytest.mark.parametrize("norm", list(THREATS))
def test_random_start_is_seeded(norm, batch):
    x0, _, _ = batch
    threat = make_threat(norm, EPS[norm])
    a = threat.random_start(x0, torch.Generator().manual_seed(3))
    b = threat.random_start(x0, torch.Generator().manual_seed(3))
    c = threat.random_start(x0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("norm", list(THREATS))
def test_step_has_the_requested_size(norm, batch):
    x0, _, g = batch
    grad = torch.randn(x0.shape, generator=g)
    threat = make_threat(norm, EPS[norm])
    x = x0.clamp(0.2, 0.8)  # away from the box so no coordinate is pinned
    moved = threat.size(threat.step(x, grad, 0.05) - x)
    assert torch.allclose(moved, torch.full_like(moved, 0.05), rtol=1e-4)


def test_l1_step_is_sparse(batch):
    x0, _, g = batch
    grad = torch.randn(x0.shape, generator=g)
    x = x0.clamp(0.2, 0.8)
    delta = L1Ball(1.0, sparsity=0.05).step(x, grad, 0.5) - x
    nonzero = (delta.flatten(1) != 0).sum(1)
    assert (nonzero <= 4).all()  # 5% of 64 pixels, rounded


def test_l1_step_skips_pixels_pinned_at_the_box():
    x = torch.zeros(1, 1, 2, 2)
    grad = torch.tensor([[[[-5.0, 1.0], [0.1, 0.2]]]])  # the largest pushes below 0
    delta = L1Ball(1.0, sparsity=0.25).step(x, grad, 0.1) - x
    assert delta[0, 0, 0, 0] == 0
    assert delta[0, 0, 0, 1] == pytest.approx(0.1)


def _qp_reference(v, eps, lo, hi):
    """Projection onto the l1 ball ∩ box by a generic solver (split z = p - n)."""
    d = len(v)

    def objective(w):
        z = w[:d] - w[d:]
        return 0.5 * np.sum((z - v) ** 2)

    bounds = [(0, max(h, 0)) for h in hi] + [(0, max(-lo_i, 0)) for lo_i in lo]
    cons = [{"type": "ineq", "fun": lambda w: eps - w.sum()}]
    start = np.zeros(2 * d)
    res = minimize(objective, start, bounds=bounds, constraints=cons,
                   method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    return res.x[:d] - res.x[d:]


def test_l1_box_projection_matches_a_generic_solver():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x0 = rng.random(12)
        v = rng.normal(0, 0.6, 12)
        eps = 1.2
        ours = project_l1_box(torch.tensor(v)[None], eps, torch.tensor(-x0)[None],
                              torch.tensor(1 - x0)[None])[0].numpy()
        ref = _qp_reference(v, eps, -x0, 1 - x0)
        assert np.abs(ours).sum() <= eps + 1e-6
        assert np.all(x0 + ours >= -1e-9)
        assert np.all(x0 + ours <= 1 + 1e-9)
        assert np.allclose(ours, ref, atol=1e-4)


def test_linf_projection_is_exact():
    x0 = torch.tensor([[0.05, 0.5, 0.97]])
    x = torch.tensor([[-0.3, 0.58, 1.5]])
    p = LinfBall(0.1).project(x, x0)
    assert torch.allclose(p, torch.tensor([[0.0, 0.58, 1.0]]))


def test_l2_projection_shrinks_onto_the_sphere():
    x0 = torch.full((1, 4), 0.5)
    x = x0 + torch.tensor([[0.3, 0.4, 0.0, 0.0]])  # distance 0.5
    p = L2Ball(0.25).project(x, x0)
    assert torch.allclose(p - x0, torch.tensor([[0.15, 0.2, 0.0, 0.0]]), atol=1e-6)


def test_unknown_norm_is_named():
    with pytest.raises(ValueError, match="norm must be one of linf, l2, l1, got 'l3'"):
        make_threat("l3", 0.1)
