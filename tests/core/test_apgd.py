"""APGD-CE / APGD-DLR (Croce & Hein 2020): budget, schedule, DLR, strength."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.core import attacks, data, models
from explorer.core.attacks.apgd import checkpoint_fractions, checkpoints, dlr_loss
from explorer.core.params import ParamError


@pytest.fixture(scope="module")
def fashion():
    ds = data.load("fashion-mnist-mini", split="test")
    x = torch.stack([ds[i][0] for i in range(32)])
    y = torch.tensor([int(ds[i][1]) for i in range(32)])
    return models.load_builtin("fmnist-cnn-standard"), x, y


def test_checkpoints_follow_the_published_schedule():
    p = checkpoint_fractions()
    assert p[:3] == pytest.approx([0.0, 0.22, 0.41])
    assert p == pytest.approx([0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99])
    for prev, cur, nxt in zip(p, p[1:], p[2:], strict=False):
        assert nxt - cur == pytest.approx(max(cur - prev - 0.03, 0.06))
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [3, 5, 6, 7, 8, 9, 10]


def test_dlr_on_hand_made_logits():
    z = torch.tensor([[5.0, 3.0, 1.0, 0.0], [1.0, 4.0, 2.0, 0.0]])
    y = torch.tensor([0, 0])
    # untargeted: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)
    assert dlr_loss(z, y).tolist() == pytest.approx([-(5 - 3) / (5 - 1),
                                                     -(1 - 4) / (4 - 1)])
    t = torch.tensor([2, 1])
    # targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)
    assert dlr_loss(z, y, t).tolist() == pytest.approx([-(5 - 1) / (5 - 0.5),
                                                        -(1 - 4) / (4 - 0.5)])
    # scale and shift invariant
    assert dlr_loss(3 * z + 7, y).tolist() == pytest.approx(dlr_loss(z, y).tolist())


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("name", ["apgd-ce", "apgd-dlr"])
def test_within_budget_and_box(fashion, name, norm):
    model, x, y = fashion
    eps = {"linf": 0.1, "l2": 1.0, "l1": 8.0}[norm]
    extra = {"n_target_classes": 2} if name == "apgd-dlr" else {}
    atk = attacks.create(name, model, eps=eps, steps=5, norm=norm, **extra)
    x_adv = atk(x[:16], y[:16])
    assert x_adv.shape == x[:16].shape
    assert float(x_adv.min()) >= 0
    assert float(x_adv.max()) <= 1
    size = attacks.make_threat(norm, eps).size(x_adv - x[:16])
    assert float(size.max()) <= eps * (1 + 1e-5)


def test_deterministic_with_seed(fashion):
    model, x, y = fashion
    runs = [attacks.create("apgd-ce", model, eps=0.05, steps=6, seed=s)(x[:8], y[:8])
            for s in (3, 3, 4)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_live_run_reports_every_step_and_ends_with_the_result(fashion):
    model, x, y = fashion
    atk = attacks.create("apgd-dlr", model, eps=0.05, steps=4, n_target_classes=2)
    steps = list(atk.run(x[:8], y[:8]))
    assert steps[-1].step == steps[-1].total == 8
    assert [s.step for s in steps[:-1]] == sorted(s.step for s in steps[:-1])
    assert torch.equal(steps[-1].x_adv, atk(x[:8], y[:8]))
    fooled = model(steps[-1].x_adv).argmax(1) != y[:8]
    assert torch.equal(steps[-1].success, fooled)


def test_targeted_to_a_class(fashion):
    model, x, y = fashion
    keep = y != 3
    atk = attacks.create("apgd-ce", model, eps=0.3, steps=20, targeted="class",
                         target_class=3)
    x_adv = atk(x[keep][:16], y[keep][:16])
    with torch.no_grad():
        hit = model(x_adv).argmax(1) == 3
    assert float(hit.float().mean()) >= 0.5


def test_apgd_ce_at_least_as_strong_as_pgd(fashion):
    model, x, y = fashion
    eps = 0.02
    pgd = attacks.create("pgd", model, eps=eps, alpha=eps / 4, steps=20)(x, y)
    apgd = attacks.create("apgd-ce", model, eps=eps, steps=20)(x, y)
    with torch.no_grad():
        acc_pgd = float((model(pgd).argmax(1) == y).float().mean())
        acc_apgd = float((model(apgd).argmax(1) == y).float().mean())
    assert acc_apgd <= acc_pgd
    assert acc_apgd < float((model(x).argmax(1) == y).float().mean())


def test_registered_with_param_specs():
    assert {"apgd-ce", "apgd-dlr"} <= set(attacks.names())
    names = {p.name for p in attacks.spec("apgd-dlr")}
    assert {"eps", "steps", "norm", "n_target_classes", "restarts", "rho"} <= names
    assert next(p for p in attacks.spec("apgd-ce") if p.name == "steps").default == 100


@pytest.mark.parametrize(
    ("name", "values", "needle"),
    [
        ("apgd-ce", {"eps": 1.5}, "eps"),
        ("apgd-ce", {"steps": 0}, "steps"),
        ("apgd-dlr", {"rho": 2.0}, "rho"),
        ("apgd-dlr", {"norm": "l3"}, "norm"),
    ],
)
def test_bad_parameters_name_themselves(fashion, name, values, needle):
    with pytest.raises(ParamError, match=needle):
        attacks.create(name, fashion[0], **values)


def test_dlr_needs_enough_classes():
    three = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    with pytest.raises(ParamError, match="at least 4 classes"):
        attacks.create("apgd-dlr", three, eps=0.1, steps=2)(x, y)
    two = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ParamError, match="at least 3 classes"):
        attacks.create("apgd-dlr", two, eps=0.1, steps=2, n_target_classes=0)(x, y)
