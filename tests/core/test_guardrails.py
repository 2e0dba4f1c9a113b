"""Guardrails: each fires on a model made to trip it and stays quiet on the
built-ins; the eps question."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.core import attacks, models
from explorer.core.models import guardrails
from explorer.core.params import ParamError

X = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _base():
    torch.manual_seed(0)
    return models.create("mlp", hidden=16, depth=1)


class _Softmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _base()

    def forward(self, x):
        return self.net(x).softmax(1)


class _Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _base()

    def forward(self, x):
        return self.net(x + 0.1 * torch.randn_like(x))


class _Dropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _base()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.net(x))


def _codes(model):
    return [w.code for w in guardrails.output_warnings(model, X)]


@pytest.mark.parametrize("name", models.builtin_names())
def test_the_builtins_raise_nothing(name):
    assert _codes(models.load_builtin(name)) == []
    assert guardrails.accuracy_warning(0.9, 10) is None


def test_probabilities_are_softmax():
    found = guardrails.output_warnings(_Softmax().eval(), X)
    assert [w.code for w in found] == ["softmax"]
    assert "wrap the model with log" in found[0].fix


def test_noise_in_the_forward_pass_is_random_output():
    found = guardrails.output_warnings(_Noisy().eval(), X)
    assert [w.code for w in found] == ["random output"]
    assert "EOT" in found[0].fix


def test_with_eot_the_random_output_warning_says_it_is_on():
    (asked,) = guardrails.check(_Noisy().eval(), X)
    assert asked.endswith("before reporting robust accuracy")
    (told,) = guardrails.check(_Noisy().eval(), X, eot=5)
    assert told.startswith("random output: two identical calls differ")
    assert told.endswith("EOT is on: each gradient averages 5 calls")
    assert guardrails.check(_Softmax().eval(), X, eot=5) == guardrails.check(
        _Softmax().eval(), X)  # other warnings as they were


def test_dropout_left_on_is_train_mode_and_nothing_changes():
    model = _Dropout().train()
    found = guardrails.output_warnings(model, X)
    assert [w.code for w in found] == ["train mode"]
    assert "'drop'" not in found[0].message
    assert "drop" in found[0].message
    assert "model.eval()" in found[0].fix
    assert model.training
    assert model.drop.training


def test_batchnorm_statistics_are_not_touched():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                        nn.Linear(4 * 26 * 26, 10)).train()
    before = net[1].running_mean.clone()
    assert _codes(net) == ["train mode"]
    assert torch.equal(net[1].running_mean, before)


def test_near_chance_accuracy_asks_about_the_input_range():
    near = guardrails.accuracy_warning(0.11, 10)
    assert near is not None
    assert near.code == "near chance"
    assert "normalisation" in near.fix
    assert guardrails.accuracy_warning(0.2, 10) is None  # twice chance: no


def test_check_gives_text_lines():
    lines = guardrails.check(_Softmax().eval(), X, clean_acc=0.1, num_classes=10)
    assert [line.split(":")[0] for line in lines] == ["softmax", "near chance"]


@pytest.mark.parametrize("attack", ["pgd", "square"])
def test_an_eps_above_one_is_a_question(attack):
    with pytest.raises(ParamError, match=r"did you mean 8/255 = 0\.0314\?"):
        attacks.create(attack, _base(), eps=8)
