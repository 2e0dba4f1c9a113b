"""Defensive distillation and ensemble adversarial training: losses, budget,
source rotation, resume, shape checks, and the masking doctor's verdict."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_nets import mlp as _mlp
from trainer_calls import fit

from explorer.core import defenses
from explorer.core.analysis.masking import masking_checks
from explorer.core.jobs import Done, Metric
from explorer.core.params import ParamError

NEW = ["distillation", "ensemble-at"]



def _train(model, sets, tmp_path, **kw):
    small, test = sets
    # 48: an odd number of batches per epoch, so ensemble-at's rotation is
    # mid-cycle at the epoch's end and a resume that lost it would differ
    args = {"epochs": 2, "batch_size": 48, "eval_n": 64, "eval_steps": 2,
            "device": "cpu", "lr": 0.05, "run_dir": tmp_path}
    return list(fit(model, small, test, **{**args, **kw}))


def _metrics(events, name):
    return [e.value for e in events if isinstance(e, Metric) and e.name == name]


def test_registered_with_defaults_and_named_param_errors():
    assert set(NEW) <= set(defenses.names())
    assert defenses.create("distillation").cfg == {
        "temperature": 20.0, "teacher": "fmnist-cnn-standard"}
    assert defenses.create("ensemble-at").cfg == {
        "eps": 0.1, "static": "fmnist-cnn-standard"}
    bad = [("distillation", {"temperature": 0.5}, "temperature"),
           ("distillation", {"teacher": "nope"}, "teacher"),
           ("ensemble-at", {"static": "fmnist-cnn-standard,nope"},
            "static: unknown built-in model 'nope'"),
           ("ensemble-at", {"static": " , "}, "static must name"),
           ("ensemble-at", {"eps": 2.0}, "eps")]
    for name, params, word in bad:
        with pytest.raises(ParamError, match=word):
            defenses.create(name, **params)


@pytest.mark.parametrize(("name", "param"), [("distillation", "teacher"),
                                             ("ensemble-at", "static")])
def test_a_fixed_model_of_another_input_shape_is_named(name, param):
    model = _mlp(in_shape=(3, 32, 32))
    with pytest.raises(ParamError, match=rf"{param}: built-in model "
                       r"'fmnist-cnn-standard' takes inputs of shape \(1, 28, 28\)"):
        defenses.create(name).prepare(model)


@pytest.mark.parametrize("method", NEW)
def test_each_method_trains(method, sets, tmp_path):
    model = _mlp()
    events = _train(model, sets, tmp_path, method=method)
    losses = _metrics(events, "train_loss")
    assert len(losses) == 2
    assert all(math.isfinite(v) for v in _metrics(events, "batch_loss"))
    assert losses[1] < losses[0]
    assert model.training
    assert isinstance(events[-1], Done)


def test_ensemble_at_rotates_sources_and_stays_in_the_ball(sets):
    x, y = sets[0].as_tensors(0, 32)
    model = _mlp()
    defense = defenses.create(
        "ensemble-at", static="fmnist-cnn-standard,fmnist-cnn-pgdat")
    defense.prepare(model)
    gen = torch.Generator().manual_seed(0)
    seen = []
    for _ in range(4):
        src = defense.source(model)
        seen.append(src)
        x_adv = defense.adversarial(model, x, y, gen)
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6
        assert (x_adv - x).abs().max() > 0.05  # it moved
        assert x_adv.min() >= 0
        assert x_adv.max() <= 1
        defense.loss(model, x, y, gen)
    assert defense.state_dict() == {"batches": 4}
    assert seen == [model, *defense.statics, model]
    assert seen[1].meta.source == "fmnist-cnn-standard"
    # transferred examples differ from the ones crafted on the model itself
    defense.batches = 0
    own = defense.adversarial(model, x, y, gen)
    defense.batches = 1
    assert not torch.equal(own, defense.adversarial(model, x, y, gen))
    assert model.training
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for s in defense.statics for p in s.parameters())


@pytest.mark.parametrize("method", NEW)
def test_resume_equals_straight_training(method, sets, tmp_path):
    kw = {"method": method, "schedule": "constant"}
    straight = _mlp()
    list(_train(straight, sets, tmp_path / "a", epochs=2, **kw))
    first = _mlp()
    list(_train(first, sets, tmp_path / "b", epochs=1, **kw))
    resumed = _mlp(seed=123)  # weights come from the checkpoint
    events = list(_train(resumed, sets, tmp_path / "b", epochs=2, resume=True, **kw))
    assert events[-1].results["epochs"] == 2
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def _sgd(name: str, x, y, **params):
    model = _mlp()
    defense = defenses.create(name, **params)
    defense.prepare(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    for i in range(100):
        sl = slice((i * 64) % len(x), (i * 64) % len(x) + 64)
        loss, _ = defense.loss(model, x[sl], y[sl], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _warnings(model, x, y) -> set[str]:
    events = list(masking_checks(model, x[:32], y[:32], 0.1, steps=5,
                                 square_queries=20, spsa_images=0))
    return {c.key for c in events[-1].results["checks"] if not c.passed}


def test_the_masking_doctor_flags_a_distilled_model_not_a_plain_one(sets):
    """Carlini & Wagner: at T = 1 the distilled student's logits are ~T times
    larger, the softmax saturates, PGD's loss stops rising and even a huge
    budget leaves images standing. The same MLP trained plainly passes."""
    x, y = sets[0].as_tensors(0, 256)
    plain = _sgd("standard", x, y)
    distilled = _sgd("distillation", x, y, temperature=50.0)
    with torch.no_grad():
        assert distilled(x[:32]).abs().amax() > 5 * plain(x[:32]).abs().amax()
        assert (distilled(x[:32]).argmax(1) == y[:32]).float().mean() > 0.8
    assert _warnings(plain, x, y) == set()
    assert {"loss-rises", "large-eps"} <= _warnings(distilled, x, y)
