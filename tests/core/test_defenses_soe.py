"""Synergy-of-Experts: the representative rule, the min-loss objective, the
adversarial examples' budget, resume, save/load and bad parameters."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from trainer_calls import fit

from explorer.core import data, defenses, models
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses.adp import make_ensemble
from explorer.core.defenses.soe import make_soe, posterior_loss
from explorer.core.jobs import Done, Metric
from explorer.core.models.ensemble import Ensemble
from explorer.core.params import ParamError


@pytest.fixture(scope="module")
def sets():
    train = data.load("fashion-mnist-mini", "train")
    test = data.load("fashion-mnist-mini", "test")
    small = ArrayDataset(train.images[:96], train.labels[:96], train.classes,
                         train.info)
    return small, test


def _mlp(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("mlp", in_shape=(1, 28, 28), hidden=16, depth=1)


def _metrics(events, name):
    return [e.value for e in events if isinstance(e, Metric) and e.name == name]


def test_registered_with_defaults_and_named_param_errors():
    assert "soe" in defenses.names()
    assert defenses.create("soe").cfg == {
        "members": 3, "eps": 0.1, "alpha": 0.025, "steps": 7,
        "posterior_weight": 1.0, "seed": 0}
    for params, word in (({"members": 1}, "members"), ({"members": 11}, "members"),
                         ({"eps": 1.5}, "eps"), ({"alpha": -0.1}, "alpha"),
                         ({"steps": 0}, "steps"),
                         ({"posterior_weight": -1.0}, "posterior_weight")):
        with pytest.raises(ParamError, match=word):
            defenses.create("soe", **params)


def test_a_model_without_a_linear_head_is_named():
    class Bare(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10]

    with pytest.raises(ParamError, match=r"soe needs sub-models whose classifier "
                       r"is a linear head.*Bare has none"):
        defenses.create("soe").prepare(Bare())


def test_the_representative_is_the_member_of_highest_estimate():
    # two members' logits and head outputs for three inputs, made by hand
    logits = [torch.tensor([[4.0, 0.0], [0.0, 0.0], [1.0, 0.0]]),
              torch.tensor([[0.0, 1.0], [0.0, 3.0], [0.0, 0.5]])]
    heads = [torch.tensor([0.0, 5.0, -4.0]), torch.tensor([0.0, -5.0, 4.0])]
    est = Ensemble.estimates(logits, heads)
    expected = torch.stack([F.softmax(v, 1).amax(1) * torch.sigmoid(g)
                            for v, g in zip(logits, heads, strict=True)])
    torch.testing.assert_close(est, expected)
    # row 0: member 0 more confident; row 1: member 1 more confident but its
    # head says it is wrong; row 2: member 0's head says it is wrong
    chosen = est.argmax(0)
    assert chosen.tolist() == [0, 0, 1]
    out = Ensemble.pick(logits, chosen)
    for i, k in enumerate(chosen.tolist()):
        torch.testing.assert_close(out[i], F.log_softmax(logits[k][i], 0))
    # the same through a model: head biases make member 2 the only confident one
    ens = make_soe(_mlp(), 3, seed=0).eval()
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        for k, head in enumerate(ens.heads):
            head.weight.zero_()
            head.bias.fill_(8.0 if k == 2 else -8.0)
        assert ens.representative(x).tolist() == [2] * 6
        torch.testing.assert_close(ens(x), F.log_softmax(ens.members[2](x), 1))


def test_adversarial_examples_per_member_stay_in_the_ball_and_box(sets):
    x, y = sets[0].as_tensors(0, 32)
    defense = defenses.create("soe", members=2, eps=0.1, alpha=0.05, steps=3)
    ens = defense.prepare(_mlp())
    advs = defense.adversarial(ens, x, y, torch.Generator().manual_seed(0))
    assert len(advs) == 2
    for x_adv in advs:
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6
        assert (x_adv - x).abs().max() > 0.05  # it moved
        assert x_adv.min() >= 0
        assert x_adv.max() <= 1
    assert not torch.equal(advs[0], advs[1])  # each crafted on its own member
    assert ens.training
    assert all(p.requires_grad for p in ens.parameters())


def test_each_example_trains_only_its_best_member(sets):
    x, y = sets[0].as_tensors(0, 16)
    defense = defenses.create("soe", members=3, steps=2, posterior_weight=0.0)
    ens = defense.prepare(_mlp())
    loss, logits = defense.loss(ens, x, y, torch.Generator().manual_seed(0))
    pool = torch.cat([x, *defense.adversarial(ens, x, y,
                                              torch.Generator().manual_seed(0))])
    labels = y.repeat(4)
    ce = torch.stack([F.cross_entropy(v, labels, reduction="none")
                      for v in ens.member_logits(pool)])
    assert loss.item() == pytest.approx(ce.min(0).values.mean().item(), rel=1e-5)
    assert loss.item() < ce.mean().item()  # not every member on every example
    assert logits.shape == (16, 10)
    # a member that is best on no example gets no gradient from the CE term
    ens.zero_grad()
    best = ce.argmin(0)
    loss.backward()
    for k, member in enumerate(ens.members):
        moved = member.head.weight.grad.abs().sum() > 0
        assert bool(moved) == bool((best == k).any())
    # the posterior term trains the heads, towards p(y | x)
    with_heads = defenses.create("soe", members=3, steps=2)
    total, _ = with_heads.loss(ens, x, y, torch.Generator().manual_seed(0))
    out, heads = ens.member_outputs(pool)
    post = posterior_loss(out, heads, labels)
    assert total.item() == pytest.approx(loss.item() + post.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(post, ens.heads[0].weight)
    assert grad.abs().sum() > 0


def test_loss_falls_over_a_few_batches(sets):
    x, y = sets[0].as_tensors(0, 96)
    defense = defenses.create("soe", members=2, steps=1, alpha=0.1)
    ens = defense.prepare(_mlp())
    opt = torch.optim.SGD(ens.parameters(), lr=0.05, momentum=0.9)
    gen, losses = torch.Generator().manual_seed(0), []
    for i in range(15):
        sl = slice((i * 32) % 96, (i * 32) % 96 + 32)
        loss, _ = defense.loss(ens, x[sl], y[sl], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])


def _train(model, sets, run_dir, **kw):
    small, test = sets
    args = {"method": "soe", "params": {"members": 2, "steps": 1},
            "epochs": 2, "batch_size": 48, "eval_n": 16, "eval_steps": 1,
            "device": "cpu", "lr": 0.05, "schedule": "constant", "run_dir": run_dir,
            "val_fraction": 0.0}  # the best file is the last epoch
    return list(fit(model, small, test, **{**args, **kw}))


def test_resume_equals_straight_training_and_the_best_file_reloads(sets, tmp_path):
    straight = _mlp()
    events = _train(straight, sets, tmp_path / "a")
    list(_train(_mlp(), sets, tmp_path / "b", epochs=1))
    resumed = _mlp(seed=123)  # the ensemble's weights come from the checkpoint
    again = _train(resumed, sets, tmp_path / "b", resume=True)
    assert again[-1].results["epochs"] == 2
    assert isinstance(events[-1], Done)
    a = models.load(tmp_path / "a" / "best.safetensors")
    b = models.load(tmp_path / "b" / "best.safetensors")
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, atol=0, rtol=0)
    # per-member figures every epoch, and how often each member answers
    for k in (1, 2):
        for fig in ("clean_acc", "robust_acc", "chosen"):
            values = _metrics(events, f"test_member{k}_{fig}")
            assert len(values) == 2
            assert all(0 <= v <= 1 for v in values)
    shares = sum(_metrics(events, f"test_member{k}_chosen")[-1] for k in (1, 2))
    assert shares == pytest.approx(1.0)
    # the best file is the representative ensemble and predicts as it did
    assert isinstance(a, Ensemble)
    assert a.meta.arch_params["rule"] == "representative"
    assert a.meta.training["method"] == "soe"
    x, _ = sets[1].as_tensors(0, 16)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_save_and_load_keep_the_rule_and_the_heads(tmp_path):
    ens = make_soe(_mlp(), 3, seed=4).eval()
    meta = ens.meta
    assert meta.arch_params == {"members": 3, "member_arch": "mlp",
                                "member_params": {"hidden": 16, "depth": 1,
                                                  "activation": "relu"},
                                "rule": "representative", "feature_dim": 16}
    loaded = models.load(models.save(ens, tmp_path / "soe.safetensors"))
    assert isinstance(loaded, Ensemble)
    assert loaded.rule == "representative"
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ens(x))
        torch.testing.assert_close(loaded.representative(x), ens.representative(x))
        for h, g in zip(loaded.heads, ens.heads, strict=True):
            torch.testing.assert_close(h.weight, g.weight)
        # not the members' mean: the rule is what the file says
        mean = torch.stack([m(x).softmax(1) for m in ens.members]).mean(0).log()
        assert not torch.allclose(loaded(x), mean)


def test_adp_ensembles_keep_their_description_and_mean(tmp_path):
    ens = make_ensemble(_mlp(), 2, seed=1).eval()
    assert "rule" not in ens.meta.arch_params  # files as before rules existed
    assert ens.rule == "mean"
    loaded = models.load(models.save(ens, tmp_path / "adp.safetensors"))
    assert loaded.rule == "mean"
    assert not hasattr(loaded, "heads")
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        mean = torch.stack([m(x).softmax(1) for m in ens.members]).mean(0)
        torch.testing.assert_close(loaded(x).exp(), mean)
    with pytest.raises(models.ModelError, match="only a representative ensemble"):
        loaded.member_outputs(x)


@pytest.mark.parametrize(("params", "message"), [
    ({"rule": "vote"}, "ensemble rule must be one of mean, representative, "
     "got 'vote'"),
    ({"rule": "representative"}, "needs its members' feature size ('feature_dim'"),
    ({"rule": "representative", "feature_dim": 0}, "positive integer), got 0"),
    ({"feature_dim": 16}, "'feature_dim' belongs to a representative ensemble"),
])
def test_bad_rules_are_named(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        models.create("ensemble", members=2, member_arch="mlp", **params)


def test_a_mean_ensemble_is_fine_tuned_as_a_representative_one():
    ens = make_ensemble(_mlp(), 2, seed=1)
    soe = defenses.create("soe").prepare(ens)
    assert soe.rule == "representative"
    assert len(soe.members) == 2  # the file's members, not the members param
    assert soe.members[0] is ens.members[0]
    assert soe.meta.arch_params["feature_dim"] == 16
