"""The evaluation cascade and its suites."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.core import data, models
from explorer.core.analysis.cascade import run_suite
from explorer.core.analysis.suites import budgets, suite_plan
from explorer.core.jobs import Cancelled, CancelToken, Done, Metric, run_to_end
from explorer.core.params import ParamError


def first_images(n: int):
    ds = data.load("fashion-mnist-mini", split="test")
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.tensor([int(ds[i][1]) for i in range(n)])
    return x, y


class Recording(nn.Module):
    """Passes through to a model and remembers every input and prediction."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x):
        out = self.model(x)
        self.calls.append((x.detach().clone(), out.detach().argmax(1)))
        return out


def _sample_ids(inputs: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Which clean image each input perturbs (the only one within eps)."""
    dist = (inputs.flatten(1)[:, None] - x.flatten(1)[None]).abs().amax(2)
    nearest = dist.argmin(1)
    assert float(dist.gather(1, nearest[:, None]).max()) <= eps + 1e-5
    return nearest


def test_cascade_attacks_only_points_still_robust():
    x, y = first_images(24)
    eps = 0.15  # the robust built-in holds all 21 at 0.05: APGD-CE breaks 6 here
    model = Recording(models.load_builtin("fmnist-cnn-pgdat"))
    seen: dict[str, set[int]] = {}
    broken: dict[str, set[int]] = {}
    results = {}
    for event in run_suite(model, x, y, "standard", eps, steps=2, n_targets=2,
                           queries=10, batch_size=7):
        if isinstance(event, Metric) and event.name not in seen:
            seen[event.name], broken[event.name] = set(), set()
            for inputs, pred in model.calls:
                ids = _sample_ids(inputs, x, eps)
                seen[event.name] |= set(ids.tolist())
                broken[event.name] |= set(ids[pred != y[ids]].tolist())
            model.calls.clear()
        if isinstance(event, Done):
            results = event.results
    labels = ["apgd-ce", "apgd-t", "square"]
    assert list(results["per_attack"]) == labels
    robust = set(seen["clean_acc"]) - broken["clean_acc"]  # clean pass: correct ones
    assert len(robust) == round(results["clean_acc"] * 24)
    for label in labels:
        # Each stage sees exactly the points no earlier stage broke ...
        assert seen[label] == robust, label
        assert results["attacked"][label] == len(robust)
        robust -= broken[label]
        # ... and every point it fooled on the way counts as broken.
        assert len(robust) == round(results["per_attack"][label] * 24)
    assert {i for i, r in enumerate(results["robust"]) if r} == robust
    assert 0 < results["attacked"]["square"] < results["attacked"]["apgd-ce"]


def test_accuracies_fall_monotonically_and_multi_takes_the_union():
    x, y = first_images(16)
    model = models.load_builtin("fmnist-cnn-pgdat")
    res = run_to_end(run_suite(model, x, y, "multi", 0.05, steps=2, n_targets=1,
                               queries=5))
    assert res["eps"] == pytest.approx({"linf": 0.05, "l2": 0.75, "l1": 5.0})
    assert [k for k in res["per_attack"] if k.startswith("l1:")] == [
        "l1:apgd-ce", "l1:apgd-t"]  # Square has no l1 version
    for norm, acc in res["per_threat"].items():
        values = [v for k, v in res["per_attack"].items() if k.startswith(norm + ":")]
        assert values == sorted(values, reverse=True)
        assert values[0] <= res["clean_acc"]
        assert acc == values[-1]
        assert res["union_acc"] <= acc
    assert res["robust_acc"] == res["union_acc"] == sum(res["robust"]) / 16
    assert res["avg_acc"] == pytest.approx(sum(res["per_threat"].values()) / 3)


def test_quick_suite_is_one_apgd_ce_stage_and_deterministic():
    x, y = first_images(12)
    model = models.load_builtin("fmnist-cnn-standard")
    runs = [run_to_end(run_suite(model, x, y, "quick", 0.02, steps=4))
            for _ in range(2)]
    assert list(runs[0]["per_attack"]) == ["apgd-ce"]
    assert runs[0]["robust"] == runs[1]["robust"]
    assert runs[0]["robust_acc"] == runs[0]["per_attack"]["apgd-ce"]
    assert runs[0]["robust_acc"] <= runs[0]["clean_acc"]
    assert "union_acc" not in runs[0]


def test_suite_plans_and_budgets():
    plan = suite_plan("standard", 0.1)
    assert [s.label for s in plan["linf"]] == ["apgd-ce", "apgd-t", "square"]
    assert plan["linf"][1].params["n_target_classes"] == 9
    assert plan["linf"][0].params["steps"] == 20
    assert plan["linf"][2].params["queries"] == 5000
    assert suite_plan("quick", 0.1)["linf"][0].params["steps"] == 10
    assert list(suite_plan("multi", 0.1)) == ["linf", "l2", "l1"]
    assert budgets(0.1, eps_l1=12.0) == pytest.approx(
        {"linf": 0.1, "l2": 1.5, "l1": 12.0})
    assert [s.label for s in suite_plan("standard", 0.1, queries=0)["linf"]] == [
        "apgd-ce", "apgd-t"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"suite": "huge"}, "suite must be one of quick, standard, multi"),
        ({"eps": 1.5}, "eps must be in [0, 1]"),
        ({"eps_l2": -1.0}, "eps_l2 must be at least 0"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"queries": -3}, "queries must be at least 0"),
    ],
)
def test_bad_suite_settings_are_named(kwargs, needle):
    args = {"suite": "standard", "eps": 0.1, **kwargs}
    with pytest.raises(ParamError, match=needle.replace("[", r"\[")):
        suite_plan(args.pop("suite"), args.pop("eps"), **args)


def test_cancel_stops_between_batches():
    x, y = first_images(8)
    token = CancelToken()
    token.cancel()
    events = run_suite(models.load_builtin("fmnist-cnn-standard"), x, y, "quick",
                       0.1, token=token)
    with pytest.raises(Cancelled):
        run_to_end(events)


@pytest.mark.slow
def test_standard_suite_not_weaker_than_torchattacks_autoattack():
    """32 images, fmnist-cnn-pgdat, l-inf eps 0.1. To keep the test short,
    both sides give Square 50 queries instead of 5000; torchattacks keeps the
    rest of its AutoAttack 'standard' (APGD-CE, APGD-T, FAB-T, 10 iterations
    each); ours runs its defaults but Square (APGD 20 iterations)."""
    torchattacks = pytest.importorskip("torchattacks")
    x, y = first_images(32)
    model = models.load_builtin("fmnist-cnn-pgdat")
    ours = run_to_end(run_suite(model, x, y, "standard", 0.1, queries=50))
    auto = torchattacks.AutoAttack(model, norm="Linf", eps=0.1, version="standard",
                                   n_classes=10, seed=0)
    auto._autoattack.attacks[-1].n_queries = 50
    with torch.no_grad():
        theirs = float((model(auto(x, y)).argmax(1) == y).float().mean())
    assert ours["robust_acc"] <= theirs
    assert ours["robust_acc"] < ours["clean_acc"]
