"""Gradient-masking checks: honest models pass, masked ones warn."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.core import defenses, models
from explorer.core.analysis.masking import CheckResult, masking_checks
from explorer.core.jobs import Cancelled, CancelToken, Done, Log, Progress, run_to_end
from explorer.core.params import ParamError

KEYS = ["iterative-vs-single-step", "more-steps-restarts", "white-vs-black-box",
        "large-eps", "loss-rises", "deterministic"]


class _RoundedInput(nn.Module):
    """Quantises the input to 8 grey levels by rounding: the gradient reaching
    the input is exactly zero, a textbook obfuscated gradient."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 8) / 8)


@pytest.fixture(scope="module")
def batch(sets):
    return sets[1].as_tensors(0, 32)


def _by_key(results) -> dict[str, CheckResult]:
    return {c.key: c for c in results["checks"]}


@pytest.fixture(scope="module")
def robust_events(batch):
    x, y = batch
    return list(masking_checks(models.load_builtin("fmnist-cnn-pgdat"), x, y, 0.1,
                               spsa_images=16))


@pytest.mark.slow
def test_adversarially_trained_model_passes_every_check(robust_events):
    results = robust_events[-1].results
    checks = results["checks"]
    assert [c.key for c in checks] == KEYS
    failed = [f"{c.name}: {c.value_text}" for c in checks if not c.passed]
    assert failed == []
    assert results["warnings"] == 0
    acc = results["accuracies"]
    assert acc["pgd"] < acc["clean"]
    assert acc["pgd_large"] == 0.0
    assert not any(isinstance(e, Log) and e.level == "warning" for e in robust_events)


@pytest.mark.slow
def test_results_are_plain_one_liners(robust_events):
    progress = [e for e in robust_events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total
    results = robust_events[-1].results
    assert [CheckResult.from_dict(d) for d in results["check_dicts"]] == \
        results["checks"]
    for c in results["checks"]:
        assert c.status == "pass"
        assert c.as_dict()["status"] == "pass"
        assert c.value_text
        assert "\n" not in c.explanation
        assert c.explanation.endswith(".")
        assert len(c.explanation) < 200
    sweep = _by_key(robust_events[-1].results)["large-eps"].details
    assert sweep["eps"] == [0.2, 0.4, 0.5]
    assert sweep["robust_acc"][-1] == 0.0


def test_zero_gradient_wrapper_warns(batch):
    x, y = batch
    model = _RoundedInput(models.load_builtin("fmnist-cnn-standard"))
    results = run_to_end(masking_checks(model, x[:16], y[:16], 0.1, spsa_images=0))
    checks = _by_key(results)
    warned = {k for k, c in checks.items() if not c.passed}
    # No gradient: the loss cannot rise, Square wins, a huge eps is not enough.
    assert {"loss-rises", "white-vs-black-box", "large-eps"} <= warned
    assert checks["loss-rises"].details["share_rose"] == 0.0
    assert "masking" in checks["white-vs-black-box"].explanation


def test_randomized_mixup_inference_warns(sets, batch):
    x, y = batch
    train = sets[0]
    mix_x, mix_y = train.as_tensors(0, 200)
    # Wrapped with the defaults: fresh draws on every call, as Pang et al. run it.
    model = defenses.wrap("mixup-inference", models.load_builtin(
        "fmnist-cnn-standard"), mix_set_x=mix_x, mix_set_y=mix_y, samples=4)
    assert model.seed is None
    results = run_to_end(masking_checks(model, x[:8], y[:8], 0.1, steps=5,
                                        spsa_images=0, square_queries=50))
    checks = _by_key(results)
    assert not checks["deterministic"].passed
    assert "randomized" in checks["deterministic"].explanation
    assert results["warnings"] >= 1


def test_l2_runs_without_spsa(batch):
    x, y = batch
    results = run_to_end(masking_checks(models.load_builtin("fmnist-cnn-standard"),
                                        x[:8], y[:8], 1.0, norm="l2", steps=3,
                                        square_queries=50, batch_size=3))
    assert "spsa" not in results["accuracies"]
    assert results["norm"] == "l2"
    assert len(results["checks"]) == len(KEYS)
    assert _by_key(results)["large-eps"].details["eps"][-1] == pytest.approx(14.0)


def test_cancel_stops_the_checks(batch):
    x, y = batch
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(masking_checks(nn.Flatten(), x, y, 0.1, token=token))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"norm": "l1"}, "norm must be one of linf, l2, got 'l1'"),
    ({"eps": 0.0}, "eps must be in (0, 0.5) for linf"),
    ({"eps": 0.6}, "got 0.6"),
    ({"tolerance": 0.9}, "tolerance must be in [0, 0.5], got 0.9"),
    ({"steps": 0}, "steps must be in [1, 1000], got 0"),
])  # fmt: skip
def test_bad_inputs_name_the_problem(batch, kwargs, message):
    x, y = batch
    args = {"eps": 0.1, **kwargs}
    with pytest.raises(ParamError) as info:
        next(masking_checks(nn.Flatten(), x, y, **args))
    assert message in str(info.value)


def test_empty_batch_is_refused():
    with pytest.raises(ParamError, match="non-empty batch"):
        next(masking_checks(nn.Flatten(), torch.zeros(0, 1, 28, 28),
                            torch.zeros(0, dtype=torch.long), 0.1))


@pytest.mark.slow
def test_done_is_last(robust_events):
    assert isinstance(robust_events[-1], Done)
    assert sum(isinstance(e, Done) for e in robust_events) == 1
