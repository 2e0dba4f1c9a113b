"""NoiLIn as a wrapper of any adversarial-training method: noisy labels at
its rate into the wrapped loss, the rate's schedule on validation, the state
through checkpoint and resume, refusals."""

from __future__ import annotations

import pytest
import torch
from trainer_calls import fit

from explorer.core import defenses, models
from explorer.core.defenses import TrainingConfig
from explorer.core.defenses.noilin import NoiLInWrapper
from explorer.core.jobs import Metric
from explorer.core.params import ParamError
from explorer.core.training import checkpoint


def _mlp(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("mlp", in_shape=(1, 28, 28), hidden=16, depth=1)


@pytest.mark.parametrize("method", ["pgd-at", "trades"])
def test_the_wrapped_loss_sees_labels_flipped_at_the_rate(method):
    wrapped = defenses.create_wrapped(method, {"steps": 1}, {"rate": 0.3})
    assert isinstance(wrapped, NoiLInWrapper)
    seen = []
    inner_loss = wrapped.inner.loss

    def recording(model, x, y, generator):
        seen.append(y)
        return inner_loss(model, x, y, generator)

    wrapped.inner.loss = recording
    x = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(1000) % 10
    model = _mlp()
    model.train()
    loss, logits = wrapped.loss(model, x, y, torch.Generator().manual_seed(1))
    assert loss.requires_grad
    assert logits.shape == (1000, 10)
    (noisy,) = seen
    assert (noisy != y).float().mean().item() == pytest.approx(0.3, abs=0.05)
    # at rate 0 the wrapped method gets the true labels
    wrapped.rate = 0.0
    wrapped.loss(model, x, y, torch.Generator().manual_seed(1))
    assert torch.equal(seen[-1], y)


def test_the_rate_grows_when_validation_robust_accuracy_stalls():
    wrapped = defenses.create_wrapped("trades", {}, {"rate": 0.1, "growth": 0.5,
                                                     "rate_max": 0.2})
    wrapped.end_epoch({"val_robust_acc": 0.40})
    wrapped.end_epoch({"val_robust_acc": 0.45})
    assert wrapped.rate == pytest.approx(0.1)
    wrapped.end_epoch({"val_robust_acc": 0.43})
    assert wrapped.rate == pytest.approx(0.15)
    wrapped.end_epoch({"test_robust_acc": 0.0})  # a test figure drives nothing
    assert wrapped.rate == pytest.approx(0.15)
    wrapped.end_epoch({"val_robust_acc": 0.30})
    assert wrapped.rate == pytest.approx(0.2)  # capped at rate_max


def test_refusals_name_the_value():
    with pytest.raises(ParamError, match="methods only, not 'standard'"):
        defenses.create_wrapped("standard", {}, {})
    with pytest.raises(ParamError, match="noilin"):
        defenses.create_wrapped("noilin", {}, {})
    with pytest.raises(ParamError, match="rate must be at most rate_max"):
        defenses.create_wrapped("pgd-at", {}, {"rate": 0.7, "rate_max": 0.5})
    with pytest.raises(ParamError, match="growth"):
        defenses.create_wrapped("fast-at", {}, {"growth": -1})
    assert "trades" in defenses.adversarial_names()
    assert "standard" not in defenses.adversarial_names()


def test_the_config_keeps_the_wrapper_and_old_runs_have_none():
    config = TrainingConfig(defense="trades", noilin={"rate": 0.1})
    assert TrainingConfig.from_json(config.to_json()).noilin == {"rate": 0.1}
    stored = config.to_json()
    del stored["noilin"]
    assert TrainingConfig.from_json(stored).noilin is None


def test_resume_of_a_wrapped_trades_run_is_bit_exact(sets, tmp_path):
    small, test = sets
    kw = {"method": "trades", "params": {"steps": 1}, "schedule": "constant",
          "noilin": {"rate": 0.2, "growth": 1.0, "rate_max": 0.5},
          "batch_size": 64, "eval_n": 32, "eval_steps": 1, "device": "cpu",
          "lr": 0.05}
    straight = _mlp()
    events = list(fit(straight, small, test, epochs=2, run_dir=tmp_path / "a", **kw))
    first = _mlp()
    list(fit(first, small, test, epochs=1, run_dir=tmp_path / "b", **kw))
    resumed = _mlp(seed=123)
    list(fit(resumed, small, test, epochs=2, run_dir=tmp_path / "b", resume=True,
             **kw))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    one, two = (checkpoint.load(tmp_path / d / "last.pt") for d in ("a", "b"))
    assert one["method"] == two["method"]
    robust = [e.value for e in events
              if isinstance(e, Metric) and e.name == "val_robust_acc"]
    assert one["method"]["rate"] == pytest.approx(0.4 if robust[1] < robust[0]
                                                  else 0.2)
    assert one["config"]["noilin"] == {"rate": 0.2, "growth": 1.0, "rate_max": 0.5}
    assert one["config"]["params"]["beta"] == 6.0  # TRADES' own, not the wrapper's
    # a resume without the wrapper is refused, naming it
    with pytest.raises(checkpoint.CheckpointError, match="noilin"):
        list(fit(_mlp(), small, test, epochs=3, run_dir=tmp_path / "b",
                 resume=True, **{**kw, "noilin": None}))
