"""compare_job: several models, one job, events that name their model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.core import data, models
from explorer.core.analysis.compare import compare_job, default_sweep
from explorer.core.jobs import Cancelled, CancelToken, Done, Metric, Snapshot
from explorer.core.params import ParamError

FAST = {"sweep_eps": [0.05, 0.1], "sweep_steps": 2, "check_n": 8,
        "check_options": {"steps": 1, "square_queries": 5, "spsa_images": 0},
        "suite_options": {"steps": 2}, "examples": 3}


@pytest.fixture(scope="module")
def images():
    ds = data.load("fashion-mnist-mini", "test")
    x, y = ds.as_tensors(0, 12)
    return ds, x, torch.as_tensor(y)


def tiny(seed: int):
    torch.manual_seed(seed)
    return models.create("mlp", in_shape=(1, 28, 28), hidden=16, depth=1)


def test_two_models_fill_every_part_in_order(images):
    ds, x, y = images
    sources = {"a": tiny(0), "b": lambda: tiny(1)}  # a loader runs in the job
    events = list(compare_job(sources, x, y, "quick", 0.1, info=ds.info,
                              classes=ds.classes, config={"data": "fmnist"}, **FAST))
    results = events[-1].results
    assert isinstance(events[-1], Done)
    assert [m["model"] for m in results["models"]] == ["a", "b"]
    clean = [e for e in events if isinstance(e, Metric) and e.name == "clean_acc"]
    assert [e.step for e in clean] == [0, 1]
    for i, entry in enumerate(results["models"]):
        assert 0 <= entry["robust_acc"] <= entry["clean_acc"] <= 1
        assert set(entry["per_attack"]) == {"apgd-ce"}
        assert entry["sweep"]["eps"] == [0.0, 0.05, 0.1]
        assert entry["sweep"]["robust_acc"][0] == entry["clean_acc"]
        assert len(entry["checks"]) == 6
        assert {c["status"] for c in entry["checks"]} <= {"pass", "warning"}
        assert "robust" not in entry  # per-sample flags stay out of the summary
        snaps = {e.label for e in events if isinstance(e, Snapshot) and e.step == i}
        assert snaps == {"sweep", "checks", "examples"}
    ex = results["examples"]
    assert ex["x"].shape == (3, 1, 28, 28)
    assert set(ex["x_adv"]) == {"a", "b"}
    assert np.abs(ex["x_adv"]["a"] - ex["x"]).max() <= 0.1 + 1e-6
    assert results["classes"] == list(ds.classes)
    assert results["config"] == {"data": "fmnist"}
    done = [e.done for e in events if hasattr(e, "done")]
    assert done == sorted(done)
    assert done[-1] == 2000


def test_multi_suite_reports_union_and_average(images):
    _, x, y = images
    results = list(compare_job({"a": tiny(0)}, x[:6], y[:6], "multi", 0.05,
                               **{**FAST, "checks": False, "examples": 0,
                                  "sweep_eps": [],
                                  "suite_options": {"steps": 1, "n_targets": 1,
                                                    "queries": 0}}))[-1].results
    entry = results["models"][0]
    assert entry["union_acc"] <= min(entry["per_threat"].values())
    assert "sweep" not in entry
    assert "checks" not in entry
    assert results["examples"] == {}


def test_a_model_that_does_not_fit_the_data_is_named(images):
    ds, x, y = images
    wrong = models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1)
    with pytest.raises(models.ModelError, match=r"model 'wrong' does not fit"):
        list(compare_job({"ok": tiny(0), "wrong": wrong}, x, y, info=ds.info))


def test_a_loader_that_fails_is_named(images):
    _, x, y = images

    def broken():
        raise OSError("no such file: /nowhere.safetensors")

    with pytest.raises(models.ModelError, match=r"'mine' could not be loaded.*"
                                                r"nowhere"):
        list(compare_job({"mine": broken}, x, y))


def test_bad_inputs_name_the_problem(images):
    _, x, y = images
    with pytest.raises(ParamError, match="at least one model"):
        list(compare_job({}, x, y))
    with pytest.raises(ParamError, match="suite must be one of"):
        list(compare_job({"a": tiny(0)}, x, y, "slow"))
    with pytest.raises(ParamError, match="one label each"):
        list(compare_job({"a": tiny(0)}, x, y[:3]))


def test_cancel_stops_between_models(images):
    _, x, y = images
    token = CancelToken()
    seen = []

    def drain():
        for event in compare_job({"a": tiny(0), "b": tiny(1)}, x, y, token=token,
                                 **FAST):
            seen.append(event)
            if isinstance(event, Snapshot) and event.label == "examples":
                token.cancel()

    with pytest.raises(Cancelled):
        drain()
    assert not any(isinstance(e, Metric) and e.step == 1 for e in seen)


def test_default_sweep_stays_in_range():
    assert default_sweep(0.1) == pytest.approx([0.025, 0.05, 0.1, 0.15, 0.2])
    assert max(default_sweep(0.8)) <= 1
