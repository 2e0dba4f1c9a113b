"""Channels-last placement and mixed-precision attacks (the CUDA speed-ups),
checked for correctness on CPU, where both also run."""

from __future__ import annotations

import pytest
import torch

from explorer.core import accel, attacks, data, models


@pytest.fixture(scope="module")
def builtin():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def mini_batch():
    return data.load("fashion-mnist-mini", "test").as_tensors(0, 64)


def test_place_stores_conv_weights_channels_last_with_the_same_outputs(mini_batch):
    x, _ = mini_batch
    model = models.load_builtin("fmnist-cnn-standard")
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        reference = model(x)
    assert conv.weight.is_contiguous()
    placed = accel.place(model, "cpu")
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(placed(x), reference, atol=1e-4)
    accel.place(model, "cpu", channels_last=False)  # keeps what it has
    mlp = models.create("mlp", in_shape=(1, 28, 28), num_classes=10)
    assert accel.place(mlp, "cpu") is mlp  # nothing to convert


def test_autocast_returns_float32_close_to_full_precision(builtin, mini_batch):
    x, _ = mini_batch
    wrapped = accel.Autocast(builtin)
    with torch.no_grad():
        full, mixed = builtin(x), wrapped(x)
    assert mixed.dtype == torch.float32
    assert (mixed.argmax(1) == full.argmax(1)).float().mean() > 0.95
    assert (mixed - full).abs().max() < 0.5  # bfloat16 has 8 bits of mantissa


@pytest.mark.parametrize("mode", [True, False])
def test_autocast_wrapper_has_the_inner_models_mode(builtin, mode):
    builtin.train(mode)
    wrapped = accel.Autocast(builtin)
    assert wrapped.training is mode
    wrapped.eval()
    assert builtin.training is False
    wrapped.train(mode)
    assert builtin.training is mode
    builtin.eval()


def test_mixed_precision_pgd_is_in_budget_and_strong(builtin, mini_batch):
    x, y = mini_batch
    builtin.train(True)
    atk = attacks.create("pgd", builtin, eps=0.1, alpha=0.01, steps=10, amp=True)
    assert atk.amp
    x_adv = atk(x, y)
    assert builtin.training is True
    assert all(p.requires_grad and p.grad is None for p in builtin.parameters())
    builtin.eval()
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert float(x_adv.min()) >= 0.0
    assert float(x_adv.max()) <= 1.0
    with torch.no_grad():
        acc = (builtin(x_adv).argmax(1) == y).float().mean()
    assert acc <= 0.05


def test_amp_default_reads_the_environment(monkeypatch, builtin):
    monkeypatch.setenv("EXPLORER_AMP", "1")
    assert attacks.create("fgsm", builtin).amp
    monkeypatch.setenv("EXPLORER_AMP", "0")
    assert not attacks.create("fgsm", builtin).amp
    assert accel.amp_dtype("cpu") == torch.bfloat16
