"""The denoiser as a classifier's defense: the five accuracies, the adaptive
attack through the denoiser, and what does not fit."""

from __future__ import annotations

import pytest
import torch

from explorer.core import denoise, models
from explorer.core.denoise.jobs import (
    CLASSIFIER_KEYS,
    adaptive_through_denoiser,
    classifier_accuracy,
)
from explorer.core.denoise.obsatk import project
from explorer.core.inference import logits_of
from explorer.core.jobs import Cancelled, CancelToken, Done, Metric, Progress
from explorer.core.models import ModelError
from explorer.core.params import ParamError

N = 12


@pytest.fixture(scope="module")
def test_set(sets):
    return sets[1]


@pytest.fixture(scope="module")
def classifier():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def denoiser():
    """A small untrained DnCNN (the built-in takes seconds per batch on CPU):
    it predicts a small residual, so it passes images nearly unchanged."""
    torch.manual_seed(0)
    return denoise.create("dncnn", depth=3, width=8)


@pytest.fixture(scope="module")
def events(classifier, denoiser, test_set):
    return list(classifier_accuracy(classifier, denoiser, test_set, rho=0.6,
                                    steps=4, n=N, batch_size=8))


def test_events_progress_metrics_and_the_five_accuracies(events, classifier,
                                                         test_set):
    progress = [e for e in events if isinstance(e, Progress)]
    assert [(p.done, p.total) for p in progress] == [(1, 2), (2, 2)]
    metrics = [e for e in events if isinstance(e, Metric)]
    assert [m.name for m in metrics] == [f"acc_{k}" for k in CLASSIFIER_KEYS]
    done = events[-1]
    assert isinstance(done, Done)
    r = done.results
    assert {m.name: m.value for m in metrics} == {
        k: v for k, v in r.items() if k.startswith("acc_")}
    assert r["n"] == N
    x, y = test_set.as_tensors(0, N)
    clean = (logits_of(classifier, x).argmax(1) == y).float().mean().item()
    assert r["acc_clean"] == pytest.approx(clean)
    for key in CLASSIFIER_KEYS:
        assert 0 <= r[f"acc_{key}"] <= 1
        assert (r[f"acc_{key}"] * N) == pytest.approx(round(r[f"acc_{key}"] * N))
    # the adaptive attack keeps its worst iterate, d = 0 among them
    assert r["acc_adaptive"] <= r["acc_denoised"]


def test_the_adaptive_attack_beats_obsatk_at_fooling_the_classifier(
        classifier, denoiser, test_set):
    """ObsAtk aims at the reconstruction; the adaptive attack at the label."""
    r = list(classifier_accuracy(classifier, denoiser, test_set, rho=1.0, steps=4,
                                 n=16, batch_size=16))[-1].results
    assert r["acc_adaptive"] < r["acc_obsatk"]
    assert r["acc_adaptive"] < r["acc_denoised"] - 0.2


def test_adaptive_perturbation_is_in_budget_and_keeps_early_misses(
        classifier, denoiser, test_set):
    x, y = test_set.as_tensors(0, 16)
    gen = torch.Generator().manual_seed(0)
    v = denoise.noise.apply(x, "gaussian", 0.3, gen)
    d = adaptive_through_denoiser(classifier, denoiser, v, y, 0.8, 3)
    flat = d.flatten(1)
    assert flat.mean(1).abs().max() < 1e-5
    assert flat.norm(dim=1).max() <= 0.8 + 1e-4
    assert torch.allclose(project(d, 0.8), d, atol=1e-6)
    with torch.no_grad():
        wrong_at_start = logits_of(classifier, denoiser(v).clamp(0, 1)).argmax(1) != y
    assert wrong_at_start.any()  # heavy noise: some are missed before any step
    assert (flat[wrong_at_start] == 0).all()


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"rho": -1.0}, ParamError, "rho must be a finite number >= 0"),
    ({"steps": 0}, ParamError, "steps must be at least 1"),
    ({"n": 0}, ParamError, "n must be at least 1"),
    ({"level": 2.0}, ValueError, r"sigma must be in \[0, 1\]"),
])
def test_bad_settings_name_the_parameter(classifier, denoiser, test_set, kwargs,
                                         error, message):
    with pytest.raises(error, match=message):
        list(classifier_accuracy(classifier, denoiser, test_set, **kwargs))


def test_a_classifier_that_does_not_fit(denoiser, test_set):
    wide = models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1)
    with pytest.raises(ModelError, match=r"the classifier does not fit the data: "
                                         r".*expects 3×32×32"):
        list(classifier_accuracy(wide, denoiser, test_set, n=4))
    with pytest.raises(ModelError, match="expected a classification model"):
        list(classifier_accuracy(denoiser, denoiser, test_set, n=4))


def test_cancel_stops_between_batches(classifier, denoiser, test_set):
    token = CancelToken()
    job = classifier_accuracy(classifier, denoiser, test_set, steps=1, n=8,
                              batch_size=4, token=token)
    next(job)
    token.cancel()
    with pytest.raises(Cancelled):
        list(job)
