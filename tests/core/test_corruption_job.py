"""The corruptions job of the Evaluate page (and of eval --corruptions):
noise and rotation curves and the adversarial confusion, per model."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import models
from explorer.core.analysis.corruption import (
    adversarial_confusion,
    confusion_params,
    corruption_accuracy,
    corruption_report,
    corruptions_job,
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
from explorer.core.models import ModelError
from explorer.core.params import ParamError

N = 16
SETTINGS = {"sigmas": (0.0, 0.3), "angles": (0.0, 45.0, 90.0)}


@pytest.fixture(scope="module")
def test_set(sets):
    return sets[1]


@pytest.fixture(scope="module")
def standard():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def events(standard, test_set):
    """Two models: one given as a module, one as a loader run in the job."""
    job = corruptions_job({"standard": standard,
                           "pgdat": lambda: models.load_builtin("fmnist-cnn-pgdat")},
                          test_set, N, eps=0.05, batch_size=8, **SETTINGS)
    return list(job)


def test_curves_and_confusion_arrive_per_model(events):
    snaps = [e for e in events if isinstance(e, Snapshot)]
    for i in range(2):
        mine = [s for s in snaps if s.step == i]
        assert all(s.total == 2 for s in mine)
        noise = [s for s in mine if s.label == "noise"]
        rotation = [s for s in mine if s.label == "rotation"]
        confusion = [s for s in mine if s.label == "confusion"]
        # the curve grows a point per setting
        assert [len(s.arrays["noise_acc"]) for s in noise] == [1, 2]
        assert [len(s.arrays["rotation_acc"]) for s in rotation] == [1, 2, 3]
        assert rotation[-1].arrays["angle"].tolist() == [0.0, 45.0, 90.0]
        assert len(confusion) == 1
        assert confusion[0].arrays["confusion"].sum() == N
        # rows are the true classes: the same whichever model predicts
        assert confusion[0].arrays["confusion"].sum(1).tolist() == \
            confusion[0].arrays["clean_confusion"].sum(1).tolist()
    assert [s.label for s in snaps if s.step == 0][-1] == "confusion"
    assert snaps.index(next(s for s in snaps if s.step == 1)) > \
        snaps.index(next(s for s in snaps if s.label == "confusion"))


def test_progress_runs_once_over_the_whole_job(events):
    progress = [e for e in events if isinstance(e, Progress)]
    done = [p.done for p in progress]
    assert done == sorted(done)
    assert progress[-1].done == progress[-1].total == 1000
    assert progress[0].label.startswith("standard: ")
    assert any(p.label.startswith("pgdat: ") for p in progress)


def test_results_are_the_core_functions_own(events, standard, test_set):
    """The job reports what corruption_accuracy and adversarial_confusion
    compute on the same images, nothing of its own."""
    metrics = [e for e in events if isinstance(e, Metric)]
    assert [(m.name, m.step) for m in metrics] == [
        ("clean_acc", 0), ("robust_acc", 0), ("clean_acc", 1), ("robust_acc", 1)]
    done = events[-1]
    assert isinstance(done, Done)
    r = done.results
    assert r["names"] == ["standard", "pgdat"]
    assert r["n"] == N
    assert r["eps"] == 0.05
    assert r["classes"] == list(test_set.classes)
    noise = run_to_end(corruption_accuracy(standard, test_set, n=N, batch_size=8,
                                           **SETTINGS))
    adv = run_to_end(adversarial_confusion(standard, test_set, attack="pgd",
                                           params=confusion_params(0.05), n=N,
                                           batch_size=8))
    mine = r["models"]["standard"]
    assert mine["corruptions"]["noise_acc"] == noise["noise_acc"]
    assert mine["corruptions"]["rotation_acc"] == noise["rotation_acc"]
    assert mine["adversarial_confusion"]["confusion"] == adv["confusion"].tolist()
    assert mine["adversarial_confusion"]["robust_acc"] == adv["robust_acc"]
    assert metrics[1].value == adv["robust_acc"]
    # the robust model keeps more of its accuracy under the attack
    robust = r["models"]["pgdat"]["adversarial_confusion"]
    assert robust["robust_acc"] > mine["adversarial_confusion"]["robust_acc"]


def test_the_report_alone_is_json_ready(standard, test_set):
    import json

    events = list(corruption_report(standard, test_set, eps=0.1, n=8,
                                    sigmas=(0.1,), angles=()))
    r = events[-1].results
    json.dumps(r)
    assert r["adversarial_confusion"]["params"] == confusion_params(0.1)
    assert r["adversarial_confusion"]["params"]["steps"] == 20
    assert np.sum(r["adversarial_confusion"]["confusion"]) == 8
    assert [e.name for e in events if isinstance(e, Metric)] == ["noise_acc"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"eps": 0.0}, r"eps must be in \(0, 1\]"),
    ({"eps": 8}, r"eps must be in \(0, 1\]"),
    ({"sigmas": (-0.1,)}, r"each of sigmas must be in \[0, 10\]"),
    ({"angles": (200.0,)}, r"each of angles must be in \[0, 180\] degrees"),
    ({"n": 0}, "n must be at least 1"),
])
def test_bad_settings_name_the_parameter(standard, test_set, kwargs, message):
    with pytest.raises(ParamError, match=message):
        list(corruptions_job({"m": standard}, test_set, **{"n": 4, **kwargs}))


def test_no_model_and_a_model_that_does_not_fit(test_set):
    with pytest.raises(ParamError, match="choose at least one model"):
        list(corruptions_job({}, test_set, 4))
    wide = models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1)
    with pytest.raises(ModelError, match="model 'wide' does not fit the data"):
        list(corruptions_job({"wide": wide}, test_set, 4))


def test_cancel_stops_the_job(standard, test_set):
    token = CancelToken()
    job = corruptions_job({"m": standard}, test_set, 8, token=token)
    next(job)
    token.cancel()
    with pytest.raises(Cancelled):
        list(job)
