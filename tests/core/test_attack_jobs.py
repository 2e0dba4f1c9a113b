"""Attack jobs: live batch, data-set attack, eps sweep, examples on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from explorer.core import attacks, data, models
from explorer.core.attacks.base import Attack, AttackStep
from explorer.core.attacks.jobs import (
    attack_dataset,
    attack_live,
    eps_sweep,
    perturbation_norms,
    save_examples,
)
from explorer.core.jobs import (
    Cancelled,
    CancelToken,
    Done,
    Metric,
    Progress,
    Snapshot,
    run_to_end,
)
from explorer.core.params import Param

PGD = {"eps": 0.2, "alpha": 0.05, "steps": 5}


@pytest.fixture(scope="module")
def model():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def dataset():
    return data.load("fashion-mnist-mini", "test")


@pytest.fixture(scope="module")
def batch(dataset):
    return dataset.as_tensors(0, 8)


@pytest.fixture(scope="module")
def live_events(model, batch):
    x, y = batch
    return list(attack_live(model, x, y, attack="pgd",
                            params={"eps": 0.1, "alpha": 0.02, "steps": 10},
                            snapshot_every=3))


class _Shift(Attack):
    """Adds ``shift`` to every pixel, claiming an l-inf budget of ``eps``."""

    name = "shift"
    title = "test shift"
    targeted_ok = False
    params = (Param("eps", float, 0.01, "claimed budget", minimum=0.0),
              Param("shift", float, 0.05, "what it really adds"),
              Param("clamp", bool, True, "clamp to [0, 1]"))  # fmt: skip

    def budget(self):
        return "linf", self.cfg["eps"]

    def _steps(self, x, y, target, generator, live):
        x_adv = x + self.cfg["shift"]
        x_adv = x_adv.clamp(0, 1) if self.cfg["clamp"] else x_adv
        # the fast path's way: no logits on the last step
        yield AttackStep(1, 1, x_adv, None, None, None, target)


class _NoEps(_Shift):
    name = "no-eps"
    params = (Param("shift", float, 0.0, "shift"),
              Param("clamp", bool, True, "clamp"))  # fmt: skip

    def budget(self):
        return None


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setitem(attacks.REGISTRY, "shift", _Shift)
    monkeypatch.setitem(attacks.REGISTRY, "no-eps", _NoEps)


def _of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_live_snapshots_every_k_and_final_matches_done(live_events, batch):
    x, y = batch
    snaps = _of(live_events, Snapshot)
    assert snaps[0].label == "clean"
    np.testing.assert_array_equal(snaps[0].arrays["x_adv"], x.numpy())
    assert [s.step for s in snaps[1:]] == [0, 3, 6, 9, 10]  # every 3rd + the last
    assert all(s.label == "pgd" and s.total == 10 for s in snaps[1:])
    arrays = snaps[-1].arrays
    assert arrays["x_adv"].shape == (8, 1, 28, 28)
    assert arrays["x_adv"].dtype == np.float32
    assert arrays["loss"].shape == (8,)
    assert arrays["probs"].shape == (8, 10)
    np.testing.assert_allclose(arrays["probs"].sum(1), 1.0, rtol=1e-5)
    assert arrays["success"].dtype == bool
    done = live_events[-1]
    assert isinstance(done, Done)
    r = done.results
    np.testing.assert_array_equal(r["x_adv"], arrays["x_adv"])
    np.testing.assert_array_equal(r["probs_adv"], arrays["probs"])
    np.testing.assert_array_equal(r["pred_adv"], arrays["probs"].argmax(1))
    np.testing.assert_array_equal(r["y"], y.numpy())
    assert r["target"] is None
    assert r["success_rate"] == pytest.approx(arrays["success"].mean())
    assert r["robust_acc"] <= r["clean_acc"]
    assert r["mean_linf"] <= 0.1 + 1e-6
    assert r["attack"] == "pgd"
    assert r["params"]["steps"] == 10
    assert {"x", "probs_clean", "pred_clean", "mean_l2", "mean_l1", "seconds"} <= set(r)
    losses = [m for m in _of(live_events, Metric) if m.name == "loss"]
    assert [m.step for m in losses] == list(range(11))
    assert _of(live_events, Progress)[-1] == Progress(10, 10, "pgd")


def test_live_events_hold_no_tensors(live_events):
    for event in live_events:
        values = (event.arrays.values() if isinstance(event, Snapshot)
                  else event.results.values() if isinstance(event, Done) else ())
        assert not any(isinstance(v, torch.Tensor) for v in values)


def test_live_fast_path_step_gets_logits(model, batch, fakes):
    x, y = batch
    r = run_to_end(attack_live(model, x, y, attack="shift",
                               params={"eps": 0.05, "shift": 0.05}))
    assert r["probs_adv"].shape == (8, 10)
    assert r["mean_linf"] == pytest.approx(0.05, abs=1e-6)


def test_dataset_pgd_breaks_the_standard_model(model, dataset):
    r = run_to_end(attack_dataset(model, dataset, attack="pgd", params=PGD, n=100,
                                  batch_size=100, keep_examples=5))
    assert r["n"] == 100
    assert r["clean_acc"] > 0.8
    assert r["robust_acc"] <= 0.03
    assert r["success_rate"] >= 0.97
    assert 0.9 <= r["success_rate_all"] <= 1.0
    assert r["mean_linf"] <= 0.2 + 1e-6
    assert r["mean_l2"] > 0
    assert r["mean_l1"] > r["mean_l2"]
    assert r["images_per_second"] > 0
    assert r["x"].shape == r["x_adv"].shape == (5, 1, 28, 28)
    assert r["y"].shape == r["pred_adv"].shape == (5,)
    assert r["target"] is None


def test_targeted_jobs_report_their_targets(model, dataset, batch):
    params = {**PGD, "targeted": "random"}
    r = run_to_end(attack_dataset(model, dataset, attack="pgd", params=params,
                                  n=20, keep_examples=4))
    assert r["target"].shape == (4,)
    assert (r["target"] != r["y"]).all()
    assert r["success_rate_all"] > 0.5  # share that reached its target
    x, y = batch
    live = run_to_end(attack_live(model, x, y, attack="pgd", params=params))
    np.testing.assert_array_equal(live["success"], live["pred_adv"] == live["target"])


def test_dataset_fgsm_events(model, dataset):
    events = list(attack_dataset(model, dataset, attack="fgsm", params={"eps": 0.1},
                                 n=100, batch_size=25))
    r = events[-1].results
    assert r["robust_acc"] < r["clean_acc"] - 0.3
    robust = [m for m in _of(events, Metric) if m.name == "robust_acc"]
    assert [m.step for m in robust] == [0, 1, 2, 3]
    assert robust[-1].value == pytest.approx(r["robust_acc"])
    assert _of(events, Progress)[-1].done == 4
    assert "x" not in r


@pytest.mark.parametrize(
    ("params", "needle"),
    [({"eps": 0.01, "shift": 0.05}, "budget"),
     ({"eps": 1.0, "shift": 2.0, "clamp": False}, "range")],
)
def test_budget_guard(model, dataset, fakes, params, needle):
    with pytest.raises(RuntimeError, match=needle) as info:
        run_to_end(attack_dataset(model, dataset, attack="shift", params=params,
                                  n=8))
    assert "shift" in str(info.value)


def test_cancel_live_restores_model_mode(batch):
    m = models.load_builtin("fmnist-cnn-standard").train()
    x, y = batch
    token = CancelToken()
    job = attack_live(m, x, y, attack="pgd", params={"steps": 50}, token=token)
    for i, _ in enumerate(job):
        assert torch.is_grad_enabled()  # no grad mode leaks out of the job
        if i == 5:
            token.cancel()
            break
    after: list = []
    with pytest.raises(Cancelled):  # seen at the next iterate
        after.extend(job)
    assert len(after) <= 4  # the rest of one iterate's events at most
    assert m.training
    assert all(p.requires_grad for p in m.parameters())


def test_cancel_dataset_between_batches(dataset):
    m = models.load_builtin("fmnist-cnn-standard").train()
    token = CancelToken()
    job = attack_dataset(m, dataset, attack="fgsm", params={}, n=64, batch_size=16,
                         token=token)
    seen = [next(job)]
    token.cancel()
    with pytest.raises(Cancelled):
        seen.extend(job)
    assert len(_of(seen, Metric)) == 2  # stopped before the second batch
    assert m.training


def test_eps_sweep_grows_a_curve(model, dataset):
    events = list(eps_sweep(model, dataset, attack="pgd", params=PGD,
                            eps_values=[0.0, 0.05, 0.2], n=40, batch_size=40))
    r = events[-1].results
    assert r["eps"] == [0.0, 0.05, 0.2]
    assert r["robust_acc"][0] == pytest.approx(r["clean_acc"])
    assert r["robust_acc"][2] <= 0.05
    assert r["robust_acc"][0] >= r["robust_acc"][1] >= r["robust_acc"][2]
    snaps = _of(events, Snapshot)
    assert [len(s.arrays["eps"]) for s in snaps] == [1, 2, 3]
    np.testing.assert_allclose(snaps[-1].arrays["robust_acc"], r["robust_acc"])
    assert [m.step for m in _of(events, Metric)] == [0, 1, 2]


def test_eps_sweep_needs_an_eps(model, dataset, fakes):
    with pytest.raises(ValueError, match="no-eps"):
        next(eps_sweep(model, dataset, attack="no-eps", params={},
                       eps_values=[0.1]))


def test_perturbation_norms():
    x = torch.zeros(2, 1, 2, 2)
    x_adv = x.clone()
    x_adv[0, 0, 0, 0], x_adv[0, 0, 1, 1] = 0.3, -0.4
    n = perturbation_norms(x, x_adv)
    np.testing.assert_allclose(n["linf"], [0.4, 0.0], rtol=1e-6)
    np.testing.assert_allclose(n["l2"], [0.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(n["l1"], [0.7, 0.0], rtol=1e-6)


def test_save_examples(live_events, dataset, tmp_path):
    results = live_events[-1].results
    paths = save_examples(tmp_path / "ex", results, classes=dataset.classes)
    names = [p.name for p in paths]
    assert names[0] == "examples.npz"
    assert names[-1] == "config.json"
    assert len([n for n in names if n.endswith(".png")]) == 8
    with np.load(paths[0], allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["x_adv"], results["x_adv"])
        np.testing.assert_array_equal(npz["target"], np.full(8, -1))
        config = json.loads(str(npz["config"]))
    assert config["attack"] == "pgd"
    assert config["params"]["steps"] == 10
    img = PILImage.open(paths[1])
    assert img.size == ((3 * 28 + 2) * 4, 28 * 4)
    assert "true: " in img.text["Description"]
    assert json.loads(paths[-1].read_text())["classes"][0] == dataset.classes[0]
    assert not list((tmp_path / "ex").glob(".*tmp"))
