"""Black-box attacks, universal perturbations and random corruptions.

Accuracies are measured on the first images of fashion-mnist-mini's test
split with the built-in standard CNN (clean accuracy ≈ 0.94 on 32-64 of them).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.core import attacks, data, models
from explorer.core.attacks.blackbox import p_schedule
from explorer.core.attacks.square_steps import bump, meta_bump
from explorer.core.attacks.universal import UniversalPerturbation, fit_universal
from explorer.core.params import ParamError

MINE = ("spsa", "square", "universal", "gaussian-noise", "uniform-noise",
        "salt-pepper", "rotation")  # fmt: skip
QUICK = {  # small settings so each runs in well under a second
    "spsa": {"steps": 1, "samples": 4},
    "square": {"queries": 10},
    "universal": {"epochs": 1, "batch_size": 4},
    "gaussian-noise": {},
    "uniform-noise": {},
    "salt-pepper": {},
    "rotation": {"worst_of": 3},
}


class GradientFree(nn.Module):
    """Raises if anyone queries it with autograd on: proves an attack is
    black-box (it only ever asks for outputs)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.requires_grad:
            raise RuntimeError("a black-box attack asked for gradients")
        return self.inner(x)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return data.load("fashion-mnist-mini", "test").as_tensors(0, 256)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def assert_valid(atk: attacks.Attack, x: torch.Tensor, x_adv: torch.Tensor) -> None:
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    budget = atk.budget()
    if budget is not None:
        norm, eps = budget
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
        assert size.max() <= eps + 1e-5


def test_square_linf_is_gradient_free_and_breaks_the_model(model, batch):
    x, y = batch[0][:32], batch[1][:32]
    wrapped = GradientFree(model)
    atk = attacks.create("square", wrapped, eps=0.1, queries=60)
    x_adv = atk(x, y)
    clean, adv = accuracy(model, x, y), accuracy(model, x_adv, y)
    assert clean >= 0.85
    # measured 0.94 -> 0.16-0.25 after 50 queries, 0.03 after 100
    assert adv <= 0.4
    assert_valid(atk, x, x_adv)


def test_square_l2_stays_in_budget_and_yields_every_tenth_query(model, batch):
    x, y = batch[0][:16], batch[1][:16]
    atk = attacks.create("square", GradientFree(model), norm="l2", eps=1.0,
                         queries=30)
    steps = list(atk.run(x, y))
    assert [s.step for s in steps[:-1]] == [10, 20, 30][: len(steps) - 1]
    last = steps[-1]
    assert_valid(atk, x, last.x_adv)
    assert last.success is not None
    assert (last.success == (model(last.x_adv).argmax(1) != y)).all()


def test_square_targeted(model, batch):
    x, y = batch[0][:8], batch[1][:8]
    atk = attacks.create("square", model, eps=0.2, queries=100, targeted="random")
    last = list(atk.run(x, y))[-1]
    assert last.target is not None
    assert (last.target != y).all()
    assert last.success.float().mean() >= 0.5


def test_spsa_lowers_accuracy_without_gradients(model, batch):
    x, y = batch[0][:32], batch[1][:32]
    atk = attacks.create("spsa", GradientFree(model), eps=0.1, steps=5,
                         samples=16, lr=0.03)
    x_adv = atk(x, y)
    # measured 0.94 -> 0.47-0.50 (0.31-0.34 with 10 steps)
    assert accuracy(model, x_adv, y) <= accuracy(model, x, y) - 0.3
    assert_valid(atk, x, x_adv)


def test_universal_perturbation_transfers_to_held_out_images(model, batch):
    x, y = batch
    fit_x, fit_y, held_x, held_y = x[:128], y[:128], x[128:], y[128:]
    atk = UniversalPerturbation(model, eps=0.15, epochs=3)
    x_adv = atk(fit_x, fit_y)
    v = atk.perturbation
    assert v is not None
    assert v.shape == x.shape[1:]
    assert v.abs().max() <= 0.15 + 1e-6
    assert torch.equal(x_adv, (fit_x + v).clamp(0, 1))
    assert_valid(atk, fit_x, x_adv)
    clean = accuracy(model, held_x, held_y)
    fooled = accuracy(model, (held_x + v).clamp(0, 1), held_y)
    assert fooled <= clean - 0.3  # measured 0.94 -> 0.40


def test_fit_universal_matches_the_attack(model, batch):
    x, y = batch[0][:8], batch[1][:8]
    v = fit_universal(model, x, y, epochs=1, batch_size=4, seed=5)
    atk = UniversalPerturbation(model, seed=5, epochs=1, batch_size=4)
    atk(x, y)
    assert torch.equal(v, atk.perturbation)
    assert fit_universal(model, x, epochs=1).shape == x.shape[1:]  # no labels


def test_universal_deepfool_push_runs(model, batch):
    x, y = batch[0][:8], batch[1][:8]
    atk = attacks.create("universal", model, push="deepfool", epochs=1, eps=0.1)
    assert_valid(atk, x, atk(x, y))


def test_random_noise_is_no_attack_but_pgd_is(model, batch):
    x, y = batch[0][:64], batch[1][:64]
    clean = accuracy(model, x, y)
    noise = attacks.create("uniform-noise", model, eps=0.1)
    x_noisy = noise(x, y)
    assert_valid(noise, x, x_noisy)
    assert (x_noisy - x).abs().max() > 0.09  # the full budget is used
    pgd = attacks.create("pgd", model, eps=0.1, steps=10)
    assert accuracy(model, x_noisy, y) >= clean - 0.1  # measured 0.94 -> 0.89
    assert accuracy(model, pgd(x, y), y) <= 0.1  # measured 0.0


def test_rotation_by_thirty_degrees_hurts_more_than_by_five(model, batch):
    x, y = batch[0][:64], batch[1][:64]
    acc = {
        deg: accuracy(model, attacks.create(
            "rotation", model, degrees=deg, random_angle=False)(x, y), y)
        for deg in (5, 30)
    }
    assert acc[30] <= acc[5] - 0.3  # measured 0.89 vs 0.28
    plain = accuracy(model, attacks.create("rotation", model, degrees=30)(x, y), y)
    worst = accuracy(model, attacks.create("rotation", model, degrees=30,
                                           worst_of=5)(x, y), y)
    assert worst < plain


@pytest.mark.parametrize("name", MINE)
def test_reproducible_mode_restored_no_parameter_grads(model, batch, name):
    x, y = batch[0][:8], batch[1][:8]
    model.train()
    try:
        outs = [attacks.create(name, model, seed=s, **QUICK[name])(x, y)
                for s in (1, 1, 2)]
        assert model.training
    finally:
        model.eval()
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])
    assert_valid(attacks.create(name, model, **QUICK[name]), x, outs[0])


@pytest.mark.parametrize(("name", "values", "param"), [
    ("square", {"eps": 2.0}, "eps"),
    ("square", {"norm": "l1"}, "norm"),
    ("square", {"queries": 0}, "queries"),
    ("spsa", {"samples": 0}, "samples"),
    ("spsa", {"delta": 0.0}, "delta"),
    ("universal", {"push": "fgsm"}, "push"),
    ("universal", {"alpha": 5.0}, "alpha"),
    ("universal", {"targeted": "random"}, "targeted"),
    ("gaussian-noise", {"sigma": -1.0}, "sigma"),
    ("uniform-noise", {"eps": 1.5}, "eps"),
    ("salt-pepper", {"amount": 1.5}, "amount"),
    ("rotation", {"worst_of": 3, "random_angle": False}, "worst_of"),
    ("rotation", {"degrees": 270.0}, "degrees"),
])  # fmt: skip
def test_bad_parameters_name_the_parameter(model, name, values, param):
    with pytest.raises(ParamError, match=param):
        attacks.create(name, model, **values)


def test_kinds_and_descriptions():
    for name in MINE:
        cls = attacks.attack_class(name)
        assert cls.description
        assert cls.title
    assert attacks.attack_class("square").kind == "black-box"
    assert attacks.attack_class("spsa").kind == "black-box"
    assert attacks.attack_class("rotation").kind == "corruption"
    assert attacks.attack_class("uniform-noise")(nn.Identity()).budget() == (
        "linf", 0.1)
    assert attacks.attack_class("gaussian-noise")(nn.Identity()).budget() is None


def test_p_schedule_and_patches():
    assert p_schedule(0.8, 0, 10_000) == 0.8
    assert p_schedule(0.8, 11, 10_000) == 0.4
    assert p_schedule(0.8, 9_000, 10_000) == pytest.approx(0.8 / 512)
    assert p_schedule(0.8, 2, 1_000) == 0.4  # marks rescale to the run length
    patch = bump(5, 5)
    assert patch.norm() == pytest.approx(1.0)
    assert patch.argmax() == 12  # peak in the centre
    meta = meta_bump(6)
    assert meta.norm() == pytest.approx(1.0)
    assert (meta[:3] >= 0).all()
    assert (meta[3:] <= 0).all()
