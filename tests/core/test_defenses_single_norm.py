"""Single-norm PGD-AT in the l2 and l1 balls (pgd-at-l2, pgd-at-l1) and the
SAT / SAT+AC / SAT+AC+MNG ablation switches of mng-ac."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_nets import gen as _gen
from tiny_nets import mlp as _mlp
from trainer_calls import fit

from explorer.cli import main
from explorer.core import defenses, models
from explorer.core.data.base import ArrayDataset
from explorer.core.jobs import Done, Metric
from explorer.core.params import ParamError
from explorer.core.training import checkpoint

SINGLE = {"pgd-at-l2": "l2", "pgd-at-l1": "l1"}
FAST = {"steps": 2}



def _cnn(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("small-cnn", in_shape=(1, 28, 28), width=4, dense=16)



def _tiny(sets, n: int = 64) -> ArrayDataset:
    small = sets[0]
    return ArrayDataset(small.images[:n], small.labels[:n], small.classes,
                        small.info)


def test_registered_with_the_multi_norm_budgets_and_named_errors():
    assert set(SINGLE) <= set(defenses.names())
    assert defenses.create("pgd-at-l2").cfg == {
        "eps_l2": 1.5, "steps": 7, "alpha_ratio": 2.5}
    assert defenses.create("pgd-at-l1").cfg == {
        "eps_l1": 10.0, "steps": 7, "alpha_ratio": 2.5, "l1_sparsity": 0.01}
    # The budget of the other norm is not a parameter of a single-norm method.
    with pytest.raises(ParamError, match="eps_linf"):
        defenses.create("pgd-at-l2", eps_linf=0.1)
    with pytest.raises(ParamError, match="eps_l1"):
        defenses.create("pgd-at-l1", eps_l1=-1.0)


@pytest.mark.parametrize("method", SINGLE)
def test_adversarial_examples_stay_in_their_ball_and_box(method, sets):
    x, y = sets[0].as_tensors(0, 16)
    defense = defenses.create(method, steps=3)
    norm = SINGLE[method]
    x_adv = defense.adversarial(_mlp(), x, y, _gen(), norm)
    size = defense.threat(norm).size(x_adv - x)
    eps = defense.cfg[f"eps_{norm}"]
    assert (size <= eps * (1 + 1e-4) + 1e-5).all()
    assert size.max() > 0.3 * eps  # the attack moved
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    # The loss trains on exactly that norm's examples (same generator state).
    model = _mlp()
    logits = defense.loss(model, x, y, _gen(4))[1]
    again = model(defense.adversarial(model, x, y, _gen(4), norm))
    assert torch.allclose(logits, again, atol=1e-6)


@pytest.mark.parametrize("method", SINGLE)
def test_loss_falls(method, sets, tmp_path):
    model = _mlp()
    events = list(fit(model, sets[0], sets[1], method=method, params=FAST,
                      epochs=2, batch_size=32, eval_n=32, eval_steps=1,
                      device="cpu", lr=0.05, run_dir=tmp_path))
    losses = [e.value for e in events if isinstance(e, Metric)
              and e.name == "train_loss"]
    assert len(losses) == 2
    assert losses[1] < losses[0]
    assert isinstance(events[-1], Done)


@pytest.mark.parametrize("method", SINGLE)
def test_resume_is_bit_exact(method, sets, tmp_path):
    tiny = _tiny(sets)
    kw = {"method": method, "params": FAST, "batch_size": 32, "eval_n": 16,
          "eval_steps": 1, "device": "cpu", "lr": 0.05, "schedule": "constant"}
    straight = _mlp()
    list(fit(straight, tiny, sets[1], epochs=2, run_dir=tmp_path / "a", **kw))
    list(fit(_mlp(), tiny, sets[1], epochs=1, run_dir=tmp_path / "b", **kw))
    resumed = _mlp()
    list(fit(resumed, tiny, sets[1], epochs=2, run_dir=tmp_path / "b",
             resume=True, **kw))
    assert all(torch.equal(a, b) for a, b in zip(
        straight.state_dict().values(), resumed.state_dict().values(), strict=True))


def test_cli_lists_and_trains_them(capsys, tmp_path):
    assert main(["defenses", "list"]) == 0
    table = capsys.readouterr().out
    assert "pgd-at-l2" in table
    assert "pgd-at-l1" in table
    code = main(["--workspace", str(tmp_path / "ws"), "train", "--arch", "mlp",
                 "--hidden", "16", "--depth", "1", "--limit-train", "64",
                 "--batch-size", "32", "--eval-n", "16", "--eval-steps", "1",
                 "--defense", "pgd-at-l2", "--steps", "1", "--eps-l2", "1.0",
                 "--epochs", "1", "--json"])
    assert code == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["type"] == "result"
    assert last["params"] == {"eps_l2": 1.0, "steps": 1, "alpha_ratio": 2.5}


@pytest.mark.parametrize(("args", "words"), [
    (["--defense", "pgd-at-l1", "--eps-l1", "-3"], ["--eps-l1", "-3"]),
    (["--defense", "mng-ac", "--ac", "false"], ["mng needs ac"]),
])
def test_cli_refuses_bad_values_in_one_line(args, words, capsys):
    assert main(["train", *args]) == 2  # the usage-error code of bad flags
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert all(w in err[0] for w in words)


# -- the MNG-AC ablation --------------------------------------------------------

ABLATION = {"sat": {"ac": False, "mng": False}, "sat+ac": {"mng": False},
            "sat+ac+mng": {}}
MNG_FAST = {"steps": 1, "gen_width": 4}


def test_switch_defaults_are_the_full_method_and_mng_needs_ac():
    cfg = defenses.create("mng-ac").cfg
    assert (cfg["ac"], cfg["mng"]) == (True, True)
    with pytest.raises(ParamError, match="mng needs ac"):
        defenses.create("mng-ac", ac=False)


@pytest.mark.parametrize("variant", ABLATION)
def test_each_switch_changes_what_is_computed(variant, sets):
    x, y = sets[0].as_tensors(0, 16)
    defense = defenses.create("mng-ac", **MNG_FAST, **ABLATION[variant])
    model = _cnn()
    loss, logits = defense.loss(model, x, y, _gen(2))
    assert math.isfinite(loss.item())
    has_ac, has_mng = variant != "sat", variant == "sat+ac+mng"
    assert (defense.last_consistency is not None) == has_ac
    assert (defense.noise_gen is not None) == has_mng
    assert (defense.last_meta_loss is not None) == has_mng
    assert ("generator" in defense.state_dict()) == has_mng
    # The loss is CE on the adversarial batch, plus beta times the
    # consistency when AC is on.
    ce = torch.nn.functional.cross_entropy(logits, y).item()
    extra = defense.cfg["beta"] * defense.last_consistency if has_ac else 0.0
    assert loss.item() == pytest.approx(ce + extra, rel=1e-5, abs=1e-6)
    if has_ac:
        assert defense.last_consistency > 0


def test_sat_switch_trains_like_sat(sets):
    """Both switches off is the sat method: same draws, same examples, same
    loss from the same generator state."""
    x, y = sets[0].as_tensors(0, 16)
    ablated = defenses.create("mng-ac", steps=2, ac=False, mng=False)
    sat = defenses.create("sat", steps=2)
    for seed in range(3):
        la = ablated.loss(_cnn(), x, y, _gen(seed))[0]
        lb = sat.loss(_cnn(), x, y, _gen(seed))[0]
        assert ablated.last_norm == sat.last_norm
        assert la.item() == pytest.approx(lb.item(), rel=1e-6)


def test_sat_plus_ac_short_run_saves_no_generator(sets, tmp_path):
    model = _cnn()
    events = list(fit(model, _tiny(sets, 32), sets[1], method="mng-ac",
                      params={**MNG_FAST, "mng": False}, epochs=1, batch_size=16,
                      eval_n=16, eval_steps=1, device="cpu", lr=0.05,
                      run_dir=tmp_path))
    assert isinstance(events[-1], Done)
    assert checkpoint.load(tmp_path / "last.pt")["method"] == {}
