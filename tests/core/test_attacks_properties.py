"""Every registered attack: box, budget, mode, gradients, seeds, clean exits."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from explorer.core import attacks
from explorer.core.params import ParamError

# Shorter runs for the property checks; each attack's own tests check strength.
QUICK = {"steps": 4, "queries": 40, "epochs": 1, "binary_search_steps": 2,
         "restarts": 1, "samples": 8, "worst_of": 2}


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 8 * 8, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(self.drop(torch.relu(self.bn(self.conv(x)))).flatten(1))


def _quick_params(name: str) -> dict:
    names = {p.name for p in attacks.spec(name)}
    return {k: v for k, v in QUICK.items() if k in names}


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 1, 8, 8, generator=g), torch.arange(6) % 10


@pytest.fixture(params=attacks.names())
def name(request):
    return request.param


def _check_budget(atk, x, x_adv):
    budget = atk.budget()
    if budget is None or budget[0] not in {"linf", "l2", "l1"}:
        return
    norm, eps = budget
    d = (x_adv - x).flatten(1)
    size = {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[norm]
    assert (size <= eps * (1 + 1e-4) + 1e-5).all(), f"{norm} {size.max()} > {eps}"


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_box_budget_mode_and_no_parameter_gradients(name, batch, mode):
    x, y = batch
    model = TinyNet().train(mode == "train")
    atk = attacks.create(name, model, **_quick_params(name))
    x_adv = atk(x, y)
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    _check_budget(atk, x, x_adv)
    assert model.training == (mode == "train")
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert not x_adv.requires_grad


def test_same_seed_same_result(name, batch):
    x, y = batch
    model = TinyNet()
    a = attacks.create(name, model, seed=5, **_quick_params(name))(x, y)
    b = attacks.create(name, model, seed=5, **_quick_params(name))(x, y)
    assert torch.equal(a, b)


def test_run_yields_steps_ending_in_the_result(name, batch):
    x, y = batch
    model = TinyNet()
    atk = attacks.create(name, model, **_quick_params(name))
    steps = list(atk.run(x, y))
    assert steps, "run() must yield at least the result"
    numbers = [s.step for s in steps]
    assert numbers == sorted(numbers)
    assert torch.equal(steps[-1].x_adv, atk(x, y))
    assert steps[-1].success is not None


def test_mode_restored_after_an_early_close(name, batch):
    x, y = batch
    model = TinyNet().train()
    atk = attacks.create(name, model, **_quick_params(name))
    with contextlib.closing(atk.run(x, y)) as steps:
        next(steps)
        assert not model.training  # frozen while running
    assert model.training
    assert all(p.requires_grad for p in model.parameters())


class Exploding(TinyNet):
    def forward(self, x):
        raise RuntimeError("boom")


def test_mode_restored_after_an_exception(name, batch):
    x, y = batch
    model = Exploding().train()
    atk = attacks.create(name, model, **_quick_params(name))
    with pytest.raises(RuntimeError, match="boom"):
        atk(x, y)
    assert model.training
    assert all(p.requires_grad for p in model.parameters())


def test_repr_shows_the_parameters(name):
    atk = attacks.create(name, TinyNet())
    assert type(atk).__name__ in repr(atk)
    for p in attacks.spec(name):
        assert f"{p.name}=" in repr(atk)


def test_unknown_parameter_is_named(name):
    with pytest.raises(ParamError, match="unknown parameter 'bogus'"):
        attacks.create(name, TinyNet(), bogus=1)


def test_targeted_modes(name, batch):
    x, y = batch
    cls = attacks.attack_class(name)
    if not cls.targeted_ok:
        with pytest.raises(ParamError, match="cannot be targeted"):
            attacks.create(name, TinyNet(), targeted="random")
        return
    with pytest.raises(ParamError, match=r"target_class must be in \[0, 9\], got 12"):
        attacks.create(name, TinyNet(), targeted="class", target_class=12,
                       **_quick_params(name))(x, y)
    steps = list(attacks.create(name, TinyNet(), targeted="least-likely",
                                **_quick_params(name)).run(x, y))
    assert steps[-1].target is not None


def test_unknown_attack_is_named():
    with pytest.raises(ParamError, match="unknown attack 'pgdd'"):
        attacks.create("pgdd", TinyNet())
