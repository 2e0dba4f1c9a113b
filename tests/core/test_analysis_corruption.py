"""Accuracy under Gaussian noise and rotations; the adversarial confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import models
from explorer.core.analysis.accuracy import clean_accuracy
from explorer.core.analysis.corruption import adversarial_confusion, corruption_accuracy
from explorer.core.jobs import Cancelled, CancelToken, Metric, Snapshot, run_to_end
from explorer.core.params import ParamError

N = 64


@pytest.fixture(scope="module")
def model():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def test_set(sets):
    return sets[1]


@pytest.fixture(scope="module")
def corruption_events(model, test_set):
    return list(corruption_accuracy(model, test_set, sigmas=(0.0, 0.2, 0.5),
                                    angles=(0.0, 45.0, 90.0), n=N, batch_size=40))


def test_noise_accuracy_falls_with_sigma(corruption_events):
    r = corruption_events[-1].results
    acc = r["noise_acc"]
    assert r["sigmas"] == [0.0, 0.2, 0.5]
    assert r["n"] == N
    assert acc[0] == r["clean_acc"]  # sigma 0 is the clean image
    assert acc[0] >= acc[1] >= acc[2]
    assert acc[2] < acc[0] - 0.2


def test_rotation_accuracy_falls_with_angle(corruption_events):
    r = corruption_events[-1].results
    acc = r["rotation_acc"]
    assert acc[0] == pytest.approx(r["clean_acc"], abs=1 / N)  # resampling only
    assert acc[2] < acc[1] < acc[0]


def test_curves_grow_live(corruption_events):
    metrics = [e for e in corruption_events if isinstance(e, Metric)]
    assert [m.name for m in metrics] == ["noise_acc"] * 3 + ["rotation_acc"] * 3
    snaps = [e for e in corruption_events if isinstance(e, Snapshot)]
    assert snaps[2].arrays["sigma"].tolist() == [0.0, 0.2, 0.5]
    assert snaps[-1].arrays["rotation_acc"].tolist() == \
        corruption_events[-1].results["rotation_acc"]


def test_noise_is_seeded(model, test_set):
    def run(seed):
        return run_to_end(corruption_accuracy(model, test_set, sigmas=(0.4,),
                                              angles=(), n=32, seed=seed))
    assert run(3)["noise_acc"] == run(3)["noise_acc"]
    assert run(3)["angles"] == []
    assert run(3)["rotation_acc"] == []


@pytest.fixture(scope="module")
def confusion(model, test_set):
    return run_to_end(adversarial_confusion(
        model, test_set, attack="fgsm", params={"eps": 0.1}, n=N, batch_size=40))


def test_confusion_rows_sum_to_class_counts(confusion, test_set):
    _, y = test_set.as_tensors(0, N)
    counts = np.bincount(y.numpy(), minlength=10)
    for key in ("confusion", "clean_confusion"):
        m = confusion[key]
        assert m.shape == (10, 10)
        assert m.dtype == np.int64
        np.testing.assert_array_equal(m.sum(1), counts)
    np.testing.assert_array_equal(confusion["support"], counts)
    assert confusion["classes"] == list(test_set.classes)
    assert confusion["adv_acc"] == pytest.approx(np.trace(confusion["confusion"]) / N)


def test_clean_confusion_matches_clean_accuracy(confusion, model, test_set):
    clean = run_to_end(clean_accuracy(model, test_set, limit=N))
    np.testing.assert_array_equal(confusion["clean_confusion"], clean["confusion"])
    # FGSM at 0.1 breaks most of the standard model's answers.
    assert confusion["robust_acc"] < clean["clean_acc"] - 0.3


def test_cancel_stops_both_jobs(model, test_set):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(corruption_accuracy(model, test_set, n=8, token=token))
    with pytest.raises(Cancelled):
        list(adversarial_confusion(model, test_set, attack="fgsm", params={},
                                   n=8, token=token))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sigmas": (0.1, -0.1)}, "each of sigmas must be in [0, 10], got -0.1"),
    ({"sigmas": (float("nan"),)}, "sigmas must hold finite numbers, got nan"),
    ({"sigmas": ("0.1",)}, "sigmas must hold finite numbers, got '0.1'"),
    ({"angles": (200,)}, "each of angles must be in [0, 180] degrees, got 200"),
    ({"sigmas": (), "angles": ()}, "give at least one sigma or one angle"),
    ({"n": 0}, "n must be at least 1, got 0"),
])  # fmt: skip
def test_bad_corruption_inputs(model, test_set, kwargs, message):
    with pytest.raises(ParamError) as info:
        list(corruption_accuracy(model, test_set, **kwargs))
    assert message in str(info.value)


@pytest.mark.parametrize(("attack", "params", "message"), [
    ("nope", {}, "unknown attack 'nope'"),
    ("fgsm", {"eps": -1}, "eps must be in [0, 1000], got -1"),
])  # fmt: skip
def test_bad_confusion_inputs(model, test_set, attack, params, message):
    with pytest.raises(ParamError) as info:
        list(adversarial_confusion(model, test_set, attack=attack, params=params))
    assert message in str(info.value)
