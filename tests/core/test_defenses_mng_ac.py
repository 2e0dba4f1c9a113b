"""MNG-AC: the meta update, the consistency loss, budgets, resume, params."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_nets import gen as _gen
from torch import nn
from trainer_calls import fit

from explorer.core import defenses, models
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses.mng_ac import consistency_loss
from explorer.core.defenses.multi import NORMS
from explorer.core.jobs import Done, Metric
from explorer.core.params import ParamError
from explorer.core.training import checkpoint

FAST = {"steps": 2, "gen_width": 4}


def _cnn(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("small-cnn", in_shape=(1, 28, 28), width=4, dense=16)



def _copy(module: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in module.state_dict().values()]


def _step(defense, model, x, y, generator):
    """One trainer update: loss, backward, classifier step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss, logits = defense.loss(model, x, y, generator)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss, logits


def test_registered_after_sat_with_defaults():
    names = defenses.names()
    assert names.index("mng-ac") == names.index("sat") + 1
    cfg = defenses.create("mng-ac").cfg
    assert cfg["beta"] == 12.0
    assert cfg["eps_linf"] == 0.1
    assert {"gen_lr", "inner_lr", "gen_width"} <= set(cfg)


@pytest.mark.parametrize(("params", "word"), [
    ({"beta": -1.0}, "beta"),
    ({"gen_lr": 0.0}, "gen_lr"),
    ({"inner_lr": -0.1}, "inner_lr"),
    ({"gen_width": 0}, "gen_width"),
    ({"eps_l2": -1.0}, "eps_l2"),
])
def test_bad_params_name_the_parameter(params, word):
    with pytest.raises(ParamError, match=word):
        defenses.create("mng-ac", **params)


def test_consistency_is_zero_for_equal_predictions_and_positive_otherwise():
    logits = torch.randn(8, 10, generator=_gen(1))
    same = consistency_loss(logits, logits.clone(), logits + 3.0)  # softmax-equal
    assert same.abs().item() < 1e-6
    other = torch.randn(8, 10, generator=_gen(2))
    assert consistency_loss(logits, logits, other).item() > 1e-3
    # Symmetric in its arguments, bounded by log 3 (JS of three distributions).
    a = consistency_loss(logits, other, -logits)
    b = consistency_loss(-logits, logits, other)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    assert a.item() <= math.log(3) + 1e-6


def test_a_step_updates_generator_and_classifier(sets):
    x, y = sets[0].as_tensors(0, 32)
    model = _cnn()
    defense = defenses.create("mng-ac", **FAST)
    defense.loss(model, x, y, _gen(3))  # builds the generator
    gen_before, model_before = _copy(defense.noise_gen), _copy(model)
    _step(defense, model, x, y, _gen(4))
    assert any(not torch.equal(a, b)
               for a, b in zip(gen_before, _copy(defense.noise_gen), strict=True))
    assert any(not torch.equal(a, b)
               for a, b in zip(model_before, _copy(model), strict=True))
    assert math.isfinite(defense.last_meta_loss)
    assert model.training


def test_meta_step_leaves_the_classifier_alone(sets):
    x, y = sets[0].as_tensors(0, 32)
    model = _cnn()
    defense = defenses.create("mng-ac", **FAST)
    defense._build(x, _gen(0))
    before = _copy(model)  # weights and batch-norm statistics
    x_adv = defense.adversarial(model, x, y, _gen(1), "linf")
    defense.meta_step(model, x, y, x_adv, _gen(2), "linf")
    assert all(torch.equal(a, b) for a, b in zip(before, _copy(model), strict=True))
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("norm", NORMS)
def test_adversarial_and_augmented_inputs_stay_in_budget_and_box(norm, sets):
    x, y = sets[0].as_tensors(0, 16)
    model = _cnn()
    defense = defenses.create("mng-ac", **FAST)
    defense._build(x, _gen(0))
    eps = defense.cfg[f"eps_{norm}"]
    size = defense.threat(norm).size
    x_adv = defense.adversarial(model, x, y, _gen(1), norm)
    x_aug = defense.augment(x, _gen(2), norm)
    for sample in (x_adv, x_aug):
        assert (size(sample - x) <= eps * (1 + 1e-4) + 1e-5).all()
        assert sample.min() >= 0
        assert sample.max() <= 1
    assert size(x_aug - x).max() > 0.3 * eps  # the noise is not negligible


def test_the_threat_model_of_each_batch_is_sampled(sets):
    x, y = sets[0].as_tensors(0, 4)
    defense = defenses.create("mng-ac", steps=1, gen_width=4)
    model, gen = _cnn(), _gen(5)
    drawn = []
    while set(drawn) != set(NORMS) and len(drawn) < 20:
        defense.loss(model, x, y, gen)
        drawn.append(defense.last_norm)
    assert set(drawn) == set(NORMS)


def test_state_dict_round_trip_restores_the_generator(sets, tmp_path):
    x, y = sets[0].as_tensors(0, 16)
    model = _cnn()
    defense = defenses.create("mng-ac", **FAST)
    for seed in range(2):  # Adam state with a step count
        _step(defense, model, x, y, _gen(seed))
    path = checkpoint.save(tmp_path / "m.pt", {"model": {},
                                               "method": defense.state_dict()})
    state = checkpoint.load(path)["method"]  # weights_only=True
    again = defenses.create("mng-ac", **FAST)
    again.load_state_dict(state)
    assert again.state_dict()["channels"] == 1  # kept until the first batch
    again._build(x, _gen(9))  # what its first batch does: build, then load
    for a, b in zip(_copy(defense.noise_gen), _copy(again.noise_gen), strict=True):
        assert torch.equal(a, b)
    # Identical next steps from identical states: the optimizer state came back.
    model_a, model_b = _cnn(7), _cnn(7)
    la, _ = _step(defense, model_a, x, y, _gen(11))
    lb, _ = _step(again, model_b, x, y, _gen(11))
    assert la.item() == pytest.approx(lb.item(), rel=1e-6)
    for a, b in zip(_copy(defense.noise_gen), _copy(again.noise_gen), strict=True):
        assert torch.allclose(a, b, atol=1e-7)


def test_short_training_run_finishes_with_finite_loss(sets, tmp_path):
    small, test = sets
    tiny = ArrayDataset(small.images[:64], small.labels[:64], small.classes,
                        small.info)
    model = _cnn()
    events = list(fit(
        model, tiny, test, method="mng-ac", params=FAST,
        epochs=1, batch_size=32, eval_n=16, eval_steps=1, device="cpu",
        lr=0.05, run_dir=tmp_path))
    losses = [e.value for e in events if isinstance(e, Metric)
              and e.name in ("batch_loss", "train_loss")]
    assert losses
    assert all(math.isfinite(v) for v in losses)
    assert isinstance(events[-1], Done)
    assert model.training
    saved = checkpoint.load(tmp_path / "last.pt")["method"]
    assert saved["channels"] == 1
    assert saved["optimizer"]["state"]  # Adam stepped and was checkpointed


@pytest.mark.slow
def test_trainer_resume_continues_bit_for_bit(sets, tmp_path):
    small, test = sets
    tiny = ArrayDataset(small.images[:64], small.labels[:64], small.classes,
                        small.info)
    kw = {"method": "mng-ac", "params": FAST, "batch_size": 32, "eval_n": 16,
          "eval_steps": 1, "device": "cpu", "lr": 0.05, "schedule": "constant"}
    straight = _cnn()
    list(fit(straight, tiny, test, epochs=2, run_dir=tmp_path / "a", **kw))
    list(fit(_cnn(), tiny, test, epochs=1, run_dir=tmp_path / "b", **kw))
    resumed = _cnn()
    list(fit(resumed, tiny, test, epochs=2, run_dir=tmp_path / "b",
                        resume=True, **kw))
    assert all(torch.equal(a, b) for a, b in zip(
        straight.state_dict().values(), resumed.state_dict().values(), strict=True))
    gen_a = checkpoint.load(tmp_path / "a" / "last.pt")["method"]["generator"]
    gen_b = checkpoint.load(tmp_path / "b" / "last.pt")["method"]["generator"]
    assert all(torch.equal(gen_a[k], gen_b[k]) for k in gen_a)
