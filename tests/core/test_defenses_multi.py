"""Multi-norm adversarial training (adv-avg, adv-max, MSD, SAT), NoiLIn and
smooth activations: budgets, selection, sampling, noise rate, ReLU swap."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_nets import gen as _gen
from tiny_nets import mlp as _mlp
from torch import nn
from trainer_calls import fit

from explorer.core import defenses, models
from explorer.core.defenses.multi import NORMS, select_best
from explorer.core.defenses.noilin import flip_labels
from explorer.core.defenses.smooth import swap_relu
from explorer.core.jobs import Done, Metric
from explorer.core.params import ParamError
from explorer.core.training import checkpoint

NEW = ["adv-avg", "adv-max", "msd", "sat", "noilin", "smooth"]
FAST = {"steps": 2}




def _train(model, sets, tmp_path, **kw):
    small, test = sets
    args = {"epochs": 2, "batch_size": 32, "eval_n": 64, "eval_steps": 2,
            "device": "cpu", "lr": 0.05, "run_dir": tmp_path}
    return list(fit(model, small, test, **{**args, **kw}))


def _metrics(events, name):
    return [e.value for e in events if isinstance(e, Metric) and e.name == name]


def test_registered_with_defaults_and_named_param_errors():
    assert set(NEW) <= set(defenses.names())
    assert defenses.create("msd").cfg == {
        "eps_linf": 0.1, "eps_l2": 1.5, "eps_l1": 10.0, "steps": 7,
        "alpha_ratio": 2.5, "l1_sparsity": 0.01}
    assert defenses.create("noilin").cfg["rate"] == 0.05
    assert defenses.create("smooth").cfg["activation"] == "softplus"
    bad = [("adv-avg", {"eps_linf": 2.0}, "eps_linf"),
           ("sat", {"eps_l2": -1.0}, "eps_l2"),
           ("msd", {"steps": 0}, "steps"),
           ("noilin", {"rate": 0.7, "rate_max": 0.5}, "rate"),
           ("smooth", {"activation": "tanh"}, "activation"),
           ("smooth", {"base": "trades"}, "base")]
    for name, params, word in bad:
        with pytest.raises(ParamError, match=word):
            defenses.create(name, **params)


@pytest.mark.parametrize("method", NEW)
def test_each_method_trains(method, sets, tmp_path):
    model = _mlp()
    events = _train(model, sets, tmp_path, method=method, params=FAST)
    losses = _metrics(events, "train_loss")
    assert len(losses) == 2
    assert all(math.isfinite(v) for v in _metrics(events, "batch_loss"))
    assert losses[1] < losses[0]
    assert model.training
    assert isinstance(events[-1], Done)


@pytest.mark.parametrize("norm", NORMS)
def test_each_threat_model_stays_in_budget_and_box(norm, sets):
    x, y = sets[0].as_tensors(0, 32)
    model = _mlp()
    defense = defenses.create("adv-avg", steps=3)
    x_adv = defense.adversarial(model, x, y, _gen(), norm)
    size = defense.threat(norm).size(x_adv - x)
    eps = defense.cfg[f"eps_{norm}"]
    assert (size <= eps * (1 + 1e-4) + 1e-5).all()
    assert size.max() > 0.5 * eps  # it moved
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_select_best_picks_the_highest_loss_per_sample():
    candidates = torch.stack([torch.full((4, 1, 2, 2), float(k)) for k in range(3)])
    losses = torch.tensor([[0.1, 5.0, 0.3, 1.0],
                           [0.2, 1.0, 0.9, 1.0],
                           [0.0, 2.0, 0.4, 1.0]])
    chosen, idx = select_best(candidates, losses)
    assert idx.tolist() == [1, 0, 1, 0]  # ties keep the first candidate
    assert chosen[:, 0, 0, 0].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_msd_stays_in_the_ball_of_its_last_choice(sets):
    x, y = sets[0].as_tensors(0, 64)
    model = _mlp()
    defense = defenses.create("msd", steps=4)
    x_adv, chosen = defense.adversarial_union(model, x, y)
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    for k, norm in enumerate(NORMS):
        rows = chosen == k
        size = defense.threat(norm).size(x_adv[rows] - x[rows])
        assert (size <= defense.cfg[f"eps_{norm}"] * (1 + 1e-4) + 1e-5).all()
    # MSD raises the loss above the clean loss.
    ce = nn.functional.cross_entropy
    with torch.no_grad():
        model.eval()
        assert ce(model(x_adv), y) > ce(model(x), y)
    model.train()


def test_adv_max_is_at_least_adv_avg(sets):
    x, y = sets[0].as_tensors(0, 32)
    model = _mlp()
    model.eval()  # no batch-norm here, but keep the passes identical anyway
    avg, _ = defenses.create("adv-avg", steps=2).loss(model, x, y, _gen(3))
    worst, _ = defenses.create("adv-max", steps=2).loss(model, x, y, _gen(3))
    assert worst.item() >= avg.item() - 1e-6
    assert worst.item() > avg.item()  # the three norms disagree somewhere


def test_sat_draws_every_norm_deterministically():
    sat = defenses.create("sat")
    draws = [sat.draw(_gen(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    gen = _gen(7)
    seq = [sat.draw(gen) for _ in range(60)]
    gen = _gen(7)
    assert seq == [sat.draw(gen) for _ in range(60)]
    assert set(seq) == set(NORMS)
    assert all(seq.count(n) > 10 for n in NORMS)


def test_noilin_flip_share_matches_rate():
    y = torch.randint(0, 10, (20_000,), generator=_gen(1))
    noisy = flip_labels(y, 0.2, 10, _gen(2))
    flipped = noisy != y
    assert flipped.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert noisy.min() >= 0
    assert noisy.max() <= 9
    # Symmetric: the new classes spread over the nine others.
    counts = torch.bincount((noisy[flipped] - y[flipped]) % 10, minlength=10)
    assert counts[0] == 0
    assert counts[1:].min() > 0.8 * counts[1:].float().mean()
    assert (flip_labels(y, 0.0, 10, _gen(2)) == y).all()


def test_noilin_rate_rises_only_after_a_drop_and_is_kept():
    d = defenses.create("noilin", rate=0.1, growth=0.5, rate_max=0.3)
    d.end_epoch({"val_robust_acc": 0.40})
    d.end_epoch({"val_robust_acc": 0.45})
    d.end_epoch({"val_robust_acc": 0.45})
    assert d.rate == pytest.approx(0.1)
    d.end_epoch({"val_robust_acc": 0.44})
    assert d.rate == pytest.approx(0.15)
    d.end_epoch({"val_robust_acc": 0.50})
    assert d.rate == pytest.approx(0.15)
    for acc in (0.4, 0.3, 0.2):
        d.end_epoch({"val_robust_acc": acc})
    assert d.rate == pytest.approx(0.3)  # capped at rate_max
    # Test figures are not validation figures: a drop there changes nothing.
    d.end_epoch({"test_robust_acc": 0.0})
    assert (d.rate, d.last_robust) == (pytest.approx(0.3), 0.2)
    again = defenses.create("noilin", rate=0.1, growth=0.5, rate_max=0.3)
    again.load_state_dict(d.state_dict())
    assert again.rate == pytest.approx(0.3)
    assert again.last_robust == 0.2


def test_noilin_state_reaches_the_checkpoint(sets, tmp_path):
    events = _train(_mlp(), sets, tmp_path, method="noilin", params=FAST)
    state = checkpoint.load(tmp_path / "last.pt")["method"]
    robust = _metrics(events, "val_robust_acc")  # the held-out images' figures
    assert state["last_robust"] == pytest.approx(robust[-1])
    grown = 0.05 * 1.05 if robust[1] < robust[0] else 0.05
    assert state["rate"] == pytest.approx(grown)


@pytest.mark.parametrize("arch", ["mlp", "small-cnn", "lenet5"])
def test_smooth_swaps_every_relu(arch):
    kw = {"hidden": 32, "depth": 2} if arch == "mlp" else {}
    kw = {"width": 4} if arch == "small-cnn" else kw
    model = models.create(arch, in_shape=(1, 28, 28), **kw)
    before = sum(isinstance(m, nn.ReLU) for m in model.modules())
    assert before > 0
    assert swap_relu(model, "gelu") == before
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert sum(isinstance(m, nn.GELU) for m in model.modules()) == before


def test_smooth_refuses_functional_relu():
    model = models.create("preact-resnet18", in_shape=(1, 28, 28), width=4)
    with pytest.raises(ParamError, match="activation"):
        defenses.create("smooth").prepare(model)


def test_smooth_training_runs_on_the_swapped_model(sets, tmp_path):
    model = _mlp()
    _train(model, sets, tmp_path, method="smooth", epochs=1,
           params={"activation": "silu", "steps": 2})
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert any(isinstance(m, nn.SiLU) for m in model.modules())


def test_smooth_checkpoint_reloads_with_its_activation(sets, tmp_path):
    model = _mlp()
    _train(model, sets, tmp_path, method="smooth", epochs=1,
           params={"activation": "silu", "steps": 2})
    reloaded = models.load(tmp_path / "best.safetensors")
    assert reloaded.meta.arch_params["activation"] == "silu"
    assert not any(isinstance(m, nn.ReLU) for m in reloaded.modules())
    x = sets[1].as_tensors(0, 8)[0]
    with torch.no_grad():
        assert torch.allclose(reloaded(x), model.eval()(x), atol=1e-5)
