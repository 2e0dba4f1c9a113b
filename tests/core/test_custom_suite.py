"""The custom suite: chosen attacks at chosen budgets."""

from __future__ import annotations

import pytest
import torch

from explorer.core import attacks, data, models
from explorer.core.analysis.cascade import run_suite
from explorer.core.analysis.compare import compare_job
from explorer.core.analysis.custom_suite import (
    budget_text,
    custom_plan,
    eps_attacks,
    parse_budgets,
)
from explorer.core.jobs import Done, Metric, Snapshot
from explorer.core.params import ParamError


@pytest.fixture(scope="module")
def images():
    x, y = data.load("fashion-mnist-mini", "test").as_tensors(0, 32)
    return x, torch.as_tensor(y)


@pytest.fixture(scope="module")
def standard():
    return models.load_builtin("fmnist-cnn-standard").eval()


def test_plan_has_one_stage_per_budget_and_attack_with_usable_defaults():
    plan = custom_plan(["pgd", "apgd-ce", "fgsm", "pgd"], [0.1, 8 / 255, 0.1])
    assert [s.label for s in plan] == ["pgd@8/255", "apgd-ce@8/255", "fgsm@8/255",
                                       "pgd@0.1", "apgd-ce@0.1", "fgsm@0.1"]
    pgd = plan[3].params
    assert pgd["eps"] == 0.1
    assert pgd["norm"] == "linf"
    assert pgd["alpha"] == pytest.approx(2.5 * 0.1 / pgd["steps"])
    assert plan[1].params["steps"] == 20  # APGD at the standard suite's length
    assert "norm" in plan[1].params
    assert plan[2].params["eps"] == pytest.approx(8 / 255)
    fast = custom_plan(["mim", "square"], [0.05], steps=4, queries=30,
                       params={"square": {"p_init": 0.3}})
    assert fast[0].params["steps"] == 4
    assert fast[0].params["alpha"] == pytest.approx(0.05 / 4)  # MIM: eps/steps
    assert fast[1].params["queries"] == 30
    assert fast[1].params["p_init"] == 0.3
    l2 = custom_plan(["pgd"], [1.5], norm="l2")
    assert l2[0].label == "pgd@1.5"
    assert l2[0].params["norm"] == "l2"


def test_only_attacks_with_a_budget_are_offered():
    offered = eps_attacks()
    assert {"fgsm", "pgd", "mim", "apgd-ce", "apgd-dlr", "square", "spsa"} <= set(
        offered)
    assert not {"deepfool", "jsma", "rotation", "cw"} & set(offered)


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((["nope"], [0.1]), {}, r"unknown attack 'nope' \(choose from fgsm"),
    ((["deepfool"], [0.1]), {}, r"attack 'deepfool' has no eps budget"),
    ((["pgd", "rotation"], [0.1]), {}, r"attack 'rotation' has no eps budget"),
    (([], [0.1]), {}, r"choose at least one attack"),
    ((["pgd"], []), {}, r"give at least one budget"),
    ((["pgd"], [1.5]), {}, r"budget must be in \(0, 1\].*got 1\.5"),
    ((["pgd"], [0.0]), {}, r"budget must be in \(0, 1\].*got 0"),
    ((["pgd"], [-2.0]), {"norm": "l2"}, r"budget must be above 0 for l2, got -2"),
    ((["fgsm"], [1.0]), {"norm": "l2"}, r"attack 'fgsm' has no l2 version"),
    ((["square"], [1.0]), {"norm": "l1"}, r"attack 'square' has no l1 version"),
    ((["pgd"], [0.1]), {"norm": "l3"}, r"norm must be one of linf, l2, l1, got 'l3'"),
    ((["pgd"], [0.1]), {"params": {"pgd": {"steps": 0}}},
     r"pgd: steps must be in \[1, 10000\], got 0"),
    ((["pgd"], [0.1]), {"params": {"mim": {"steps": 3}}},
     r"parameters given for 'mim', which is not among"),
])
def test_bad_plans_name_the_value(args, kwargs, message):
    with pytest.raises(ParamError, match=message):
        custom_plan(*args, **kwargs)


def test_budgets_parse_like_pixel_params():
    assert parse_budgets("0.05, 0.1, 8/255") == pytest.approx([0.05, 0.1, 8 / 255])
    assert parse_budgets(" 0.1 0.2 ") == [0.1, 0.2]
    assert budget_text(8 / 255) == "8/255"
    assert budget_text(0.2) == "0.2"
    with pytest.raises(ParamError, match=r"budgets: 'abc' is not a number"):
        parse_budgets("0.1, abc")
    with pytest.raises(ParamError, match=r"budgets: '1/0' is not a number"):
        parse_budgets("1/0")
    with pytest.raises(ParamError, match="give at least one budget"):
        parse_budgets(" , ")


def _robust_alone(model, x, y, correct, stage, seed):
    """What one stage leaves robust, attacking all correct points at once
    (each with its own draws, keyed by its index, as the suite does)."""
    atk = attacks.create(stage.name, model, seed=seed, **stage.params)
    idx = correct.nonzero(as_tuple=True)[0]
    x_adv = atk(x[idx], y[idx], ids=idx)
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != y[idx]
    inside = (x_adv - x[idx]).flatten(1).abs().amax(1) <= stage.eps + 1e-5
    robust = correct.clone()
    robust[idx[fooled & inside]] = False
    return robust


def test_robust_at_a_budget_means_surviving_every_attack_there_and_below(
        images, standard):
    x, y = images
    events = list(run_suite(standard, x, y, "custom", attacks=["fgsm", "pgd"],
                            budgets=[0.1, 0.02], steps=5, batch_size=64, seed=3))
    results = events[-1].results
    assert isinstance(events[-1], Done)
    assert list(results["per_attack"]) == ["fgsm@0.02", "pgd@0.02", "fgsm@0.1",
                                           "pgd@0.1"]
    assert results["budgets"] == [0.02, 0.1]
    assert results["attacks"] == ["fgsm", "pgd"]
    with torch.no_grad():
        correct = standard(x).argmax(1) == y
    plan = custom_plan(["fgsm", "pgd"], [0.02, 0.1], steps=5)
    alone = [_robust_alone(standard, x, y, correct, s, 3 + k)
             for k, s in enumerate(plan)]
    for stage, robust in zip(plan, alone, strict=True):
        assert results["per_attack"][stage.label] == pytest.approx(
            robust.float().mean().item())
    low = alone[0] & alone[1]
    high = low & alone[2] & alone[3]
    assert results["per_budget"] == pytest.approx({
        "0.02": low.float().mean().item(), "0.1": high.float().mean().item()})
    assert results["robust_acc"] == results["per_budget"]["0.1"]
    assert results["robust"] == high.tolist()
    assert results["clean_acc"] > results["per_budget"]["0.02"] > results["robust_acc"]
    names = [e.name for e in events if isinstance(e, Metric)]
    assert names == ["clean_acc", "fgsm@0.02", "pgd@0.02", "robust@0.02",
                     "fgsm@0.1", "pgd@0.1", "robust@0.1", "robust_acc"]


def test_compare_job_draws_the_budgets_as_its_curve(images):
    x, y = images
    torch.manual_seed(0)
    model = models.create("mlp", in_shape=(1, 28, 28), hidden=16, depth=1)
    events = list(compare_job({"a": model}, x[:8], y[:8], "custom", 0.1,
                              attacks=["fgsm"], budgets=[0.05, 0.1], checks=False,
                              examples=2))
    results = events[-1].results
    entry = results["models"][0]
    assert results["budgets"] == [0.05, 0.1]
    assert results["attacks"] == ["fgsm"]
    assert entry["sweep"]["eps"] == [0.0, 0.05, 0.1]
    assert entry["sweep"]["robust_acc"] == [entry["clean_acc"],
                                            *entry["per_budget"].values()]
    assert results["sweep_attack"] is None  # no separate sweep ran
    sweeps = [e for e in events if isinstance(e, Snapshot) and e.label == "sweep"]
    assert len(sweeps) == 1
    assert results["examples"]["attack"] == "fgsm@0.1"
    with pytest.raises(ParamError, match="attack 'jsma' has no eps budget"):
        list(compare_job({"a": model}, x, y, "custom", attacks=["jsma"],
                         budgets=[0.1]))
    with pytest.raises(ParamError, match="eps_l2 and eps_l1 belong to the multi"):
        list(compare_job({"a": model}, x, y, "custom", attacks=["fgsm"],
                         budgets=[0.1], suite_options={"eps_l2": 1.0}))
