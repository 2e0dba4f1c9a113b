"""FAB / FAB-T (Croce & Hein 2020): the projection, budget, strength, params."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog, minimize
from torch import nn

from explorer.core import attacks, data, models
from explorer.core.attacks.fab import FastAdaptiveBoundary, plane_step
from explorer.core.params import ParamError


@pytest.fixture(scope="module")
def fashion():
    ds = data.load("fashion-mnist-mini", split="test")
    x = torch.stack([ds[i][0] for i in range(32)])
    y = torch.tensor([int(ds[i][1]) for i in range(32)])
    return models.load_builtin("fmnist-cnn-standard"), x, y


def _reference_linf(x, w, c):
    """min t s.t. |δ_i| <= t, w·δ = c, 0 <= x + δ <= 1 (a linear program)."""
    d = len(x)
    cost = np.r_[np.zeros(d), 1.0]
    upper = np.block([[np.eye(d), -np.ones((d, 1))], [-np.eye(d), -np.ones((d, 1))]])
    bounds = [(-xi, 1 - xi) for xi in x] + [(0, None)]
    res = linprog(cost, A_ub=upper, b_ub=np.zeros(2 * d),
                  A_eq=np.r_[w, 0.0][None], b_eq=[c], bounds=bounds)
    assert res.status == 0
    return res.fun


def _reference_l2(x, w, c):
    """min ||δ||_2 s.t. w·δ = c, 0 <= x + δ <= 1 (a small QP)."""
    res = minimize(lambda v: v @ v, np.zeros_like(x), jac=lambda v: 2 * v,
                   constraints=[{"type": "eq", "fun": lambda v: w @ v - c,
                                 "jac": lambda v: w}],
                   bounds=[(-xi, 1 - xi) for xi in x], method="SLSQP",
                   options={"ftol": 1e-12, "maxiter": 500})
    assert res.success
    return float(np.sqrt(res.fun))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_plane_step_is_the_smallest_step_onto_the_plane_inside_the_box(norm):
    g = torch.Generator().manual_seed(0)
    n, d = 40, 7
    x = torch.rand(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(n, d, generator=g, dtype=torch.float64)
    w[::5, 2] = 0  # coordinates the plane does not depend on
    # reachable targets of both signs: up to 80% of what the box allows
    up = (torch.where(w > 0, 1 - x, x) * w.abs()).sum(1)
    down = (torch.where(w > 0, x, 1 - x) * w.abs()).sum(1)
    share = torch.rand(n, generator=g, dtype=torch.float64) * 1.6 - 0.8
    c = torch.where(share > 0, share * up, share * down)
    delta = plane_step(x, w, c, norm)
    assert (w * delta).sum(1).numpy() == pytest.approx(c.numpy(), abs=1e-9)
    assert float((x + delta).min()) >= -1e-12
    assert float((x + delta).max()) <= 1 + 1e-12
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    reference = _reference_linf if norm == "linf" else _reference_l2
    for i in range(n):
        best = reference(x[i].numpy(), w[i].numpy(), float(c[i]))
        assert float(size[i]) == pytest.approx(best, rel=1e-5, abs=1e-7)


def test_plane_out_of_reach_moves_every_coordinate_to_its_end():
    x = torch.tensor([[0.2, 0.7, 0.5]])
    w = torch.tensor([[1.0, -2.0, 0.0]])
    delta = plane_step(x, w, torch.tensor([50.0]), "linf")
    assert delta[0].tolist() == pytest.approx([0.8, -0.7, 0.0])  # x + δ = (1, 0, .5)
    back = plane_step(x, w, torch.tensor([-50.0]), "l2")
    assert back[0].tolist() == pytest.approx([-0.2, 0.3, 0.0])


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.05), ("l2", 1.0)])
def test_fab_t_breaks_the_standard_model_within_budget(fashion, norm, eps):
    model, x, y = fashion
    atk = attacks.create("fab", model, eps=eps, norm=norm, steps=20,
                         n_target_classes=3)
    assert atk.budget() == (norm, eps)
    x_adv = atk(x, y)
    assert x_adv.shape == x.shape
    assert float(x_adv.min()) >= 0
    assert float(x_adv.max()) <= 1
    size = attacks.make_threat(norm, eps).size(x_adv - x)
    assert float(size.max()) <= eps * (1 + 1e-5)
    with torch.no_grad():
        clean = model(x).argmax(1) == y
        robust = model(x_adv).argmax(1) == y
    assert int(robust.sum()) <= int(clean.sum()) // 4  # most correct ones break


def test_never_leaves_the_ball_where_it_finds_nothing_inside(fashion):
    """At a budget too small to break much, FAB's closest adversarial examples
    lie outside the ball: the result is their projection, still in budget."""
    model, x, y = fashion
    eps = 0.004
    atk = attacks.create("fab", model, eps=eps, steps=10, n_target_classes=2)
    steps = list(atk.run(x[:12], y[:12]))
    for step in steps:  # the live view stays inside too
        assert float((step.x_adv - x[:12]).abs().amax()) <= eps * (1 + 1e-5)
    last = steps[-1]
    assert not bool(last.success.all())
    assert float((last.x_adv - x[:12]).flatten(1).abs().amax(1).max()) > eps / 2
    with torch.no_grad():
        assert torch.equal(last.success, model(last.x_adv).argmax(1) != y[:12])


def test_minimal_distortion_with_a_large_budget(fashion):
    """Untargeted FAB with eps = 1 fools every correct image, and close to it:
    APGD-CE already breaks the model at 0.05, so FAB's median must be smaller."""
    model, x, y = fashion
    x_adv = attacks.create("fab", model, eps=1.0, steps=30, n_target_classes=0)(
        x[:16], y[:16])
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) != y[:16]).all())
    dist = (x_adv - x[:16]).flatten(1).abs().amax(1)
    assert float(dist.median()) < 0.05


def test_targeted_to_a_class(fashion):
    model, x, y = fashion
    keep = y != 3
    atk = attacks.create("fab", model, eps=0.3, steps=30, targeted="class",
                         target_class=3)
    x_adv = atk(x[keep][:12], y[keep][:12])
    with torch.no_grad():
        hit = model(x_adv).argmax(1) == 3
    assert float(hit.float().mean()) >= 0.5


def test_restart_starts_at_half_the_smaller_of_eps_and_the_best_distance():
    atk = attacks.create("fab", nn.Linear(4, 3), eps=0.2)
    x0 = torch.full((3, 1, 4, 4), 0.5)
    dist = torch.tensor([torch.inf, 0.1, 0.3])
    start = atk._start(x0, dist, torch.Generator().manual_seed(0))
    size = (start - x0).flatten(1).abs().amax(1)
    assert size.tolist() == pytest.approx([0.1, 0.05, 0.1])


def test_registered_with_autoattacks_settings():
    assert attacks.attack_class("fab") is FastAdaptiveBoundary
    spec = {p.name: p.default for p in attacks.spec("fab")}
    assert spec["steps"] == 100
    assert spec["n_target_classes"] == 9
    assert (spec["alpha_max"], spec["eta"], spec["beta"]) == (0.1, 1.05, 0.9)
    assert spec["restarts"] == 1


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"eps": 1.5}, r"eps must be in \[0, 1\] for the l-inf threat model"),
        ({"norm": "l1"}, "norm must be one of linf, l2, got 'l1'"),
        ({"steps": 0}, r"steps must be in \[1, 10000\], got 0"),
        ({"eta": 0.5}, r"eta must be in \[1, 10\], got 0.5"),
        ({"alpha_max": 2.0}, r"alpha_max must be in \[0, 1\], got 2"),
        ({"n_target_classes": -1}, r"n_target_classes must be in \[0, 1000\]"),
    ],
)
def test_bad_parameters_name_themselves(fashion, values, needle):
    with pytest.raises(ParamError, match=needle):
        attacks.create("fab", fashion[0], **values)


def test_needs_two_classes():
    one = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    with pytest.raises(ParamError, match="FAB needs at least 2 classes, the model "
                                         "has 1"):
        attacks.create("fab", one, eps=0.1, steps=2)(torch.rand(2, 1, 2, 2),
                                                     torch.tensor([0, 0]))


def test_fab_takes_bpda_through_a_non_differentiable_wrapper():
    """Bit-depth rounding has a zero gradient: FAB's planes vanish without
    BPDA, and with BPDA identity it breaks the standard model as usual."""
    from explorer.core import data, models
    from explorer.core.defenses.bit_depth import BitDepth

    model = BitDepth(models.load_builtin("fmnist-cnn-standard"), 3).eval()
    x, y = data.load("fashion-mnist-mini", "test").as_tensors(0, 8)
    with torch.no_grad():
        right = model(x).argmax(1) == y

    def robust(bpda: str) -> int:
        attack = attacks.create("fab", model, eps=0.1, steps=10,
                                n_target_classes=2, bpda=bpda)
        x_adv = attack(x, y)
        assert (x_adv - x).abs().amax() <= 0.1 + 1e-6
        with torch.no_grad():
            return int((model(x_adv).argmax(1) == y)[right].sum())

    assert "eot" not in {p.name for p in attacks.spec("fab")}
    assert robust("identity") < robust("off")
