"""The empirical side of the Certify page: PGD-l2 on the base model and on
the smoothed classifier (EOT through the noise), on the same images."""

import pytest
import torch

from explorer.core import data, models
from explorer.core.certify import empirical
from explorer.core.inference import logits_of
from explorer.core.jobs import Cancelled, CancelToken, Progress, Snapshot, run_to_end
from explorer.core.params import ParamError


@pytest.fixture(scope="module")
def standard():
    return models.load_builtin("fmnist-cnn-standard"), data.load(
        "fashion-mnist-mini", "test")


def test_noisy_input_draws_fresh_noise_per_call_reproducibly():
    net = torch.nn.Flatten()
    x = torch.zeros(2, 1, 2, 2)
    a = empirical.NoisyInput(net, 0.5, seed=3)
    b = empirical.NoisyInput(net, 0.5, seed=3)
    first = a(x)
    assert not torch.equal(first, a(x))
    assert torch.equal(first, b(x))
    assert first.std().item() == pytest.approx(0.5, abs=0.4)


def test_attacks_lower_both_curves(standard):
    model, ds = standard
    events = list(empirical.empirical_job(
        model, ds, 6, sigma=1e-3, radii=[0, 3.0], steps=3, eot=2,
        predict_samples=20, alpha=0.01))
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert [float(s.arrays["radius"]) for s in snaps] == [0.0, 3.0]
    r = events[-1].results
    x, y = ds.as_tensors(0, 6)
    clean = (logits_of(model, x).argmax(1) == y).float().mean().item()
    assert r["base_acc"][0.0] == pytest.approx(clean)
    assert r["base_acc"][3.0] < r["base_acc"][0.0]
    # with almost no noise the smoothed model is the base model: the attack
    # through NoisyInput with EOT must break it just as well
    assert r["smoothed_acc"][0.0] == pytest.approx(clean)
    assert r["smoothed_acc"][3.0] < r["smoothed_acc"][0.0]
    assert "EOT 2" in r["note"]
    assert set(r["smoothed_abstain"]) == {0.0, 3.0}
    assert all(0 <= v <= 1 - r["smoothed_acc"][k]
               for k, v in r["smoothed_abstain"].items())


def test_bad_values_and_cancel(standard):
    model, ds = standard
    with pytest.raises(ParamError, match="eot"):
        run_to_end(empirical.empirical_job(model, ds, 2, eot=0))
    with pytest.raises(ParamError, match="sigma"):
        run_to_end(empirical.empirical_job(model, ds, 2, sigma=0))
    token = CancelToken()
    events = empirical.empirical_job(model, ds, 2, radii=[0, 1], token=token)
    assert isinstance(next(events), Progress)
    token.cancel()
    with pytest.raises(Cancelled):
        next(events)
