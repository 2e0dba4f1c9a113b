"""Training for randomized smoothing: Gaussian noise augmentation, SmoothAdv."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from trainer_calls import fit

from explorer.core import defenses, models
from explorer.core.jobs import Metric
from explorer.core.params import ParamError


def _mlp(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("mlp", in_shape=(1, 28, 28), hidden=32, depth=1)


def _step(method: str, x, y, **params) -> dict[str, torch.Tensor]:
    """One SGD step of ``method`` from the same initial weights."""
    model = _mlp()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss, logits = defenses.create(method, **params).loss(
        model, x, y, torch.Generator().manual_seed(5))
    assert logits.shape == (len(x), 10)
    loss.backward()
    opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_registered_with_parameters():
    assert {"gaussian", "smoothadv"} <= set(defenses.names())
    assert defenses.create("gaussian").cfg == {"sigma": 0.25}
    assert defenses.create("smoothadv", eps=1.5).cfg["eps"] == 1.5  # an l2 budget
    for method in ("gaussian", "smoothadv"):
        with pytest.raises(ParamError, match="sigma"):
            defenses.create(method, sigma=0.0)


def test_gaussian_loss_is_cross_entropy_on_noisy_images(sets):
    x, y = sets[0].as_tensors(0, 16)
    model = _mlp()
    loss, _ = defenses.create("gaussian", sigma=0.5).loss(
        model, x, y, torch.Generator().manual_seed(5))
    noise = 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    assert loss.item() == pytest.approx(F.cross_entropy(model(x + noise), y).item(),
                                        rel=1e-6)
    assert loss.item() != pytest.approx(F.cross_entropy(model(x), y).item(),
                                        rel=1e-3)


def test_one_step_differs_from_standard_training(sets):
    x, y = sets[0].as_tensors(0, 16)
    plain = _step("standard", x, y)
    for method, params in (("gaussian", {}), ("smoothadv", {"steps": 1, "m": 2})):
        trained = _step(method, x, y, **params)
        assert any(not torch.allclose(plain[k], trained[k]) for k in plain), method


def test_smoothadv_attack_stays_in_the_l2_ball_and_box(sets):
    x, y = sets[0].as_tensors(0, 8)
    method = defenses.create("smoothadv", eps=0.5, steps=3, m=2)
    noise = 0.25 * torch.randn(2, *x.shape, generator=torch.Generator().manual_seed(1))
    model = _mlp()
    model.train()
    x_adv = method.adversarial(model, x, y, noise)
    assert model.training
    assert (x_adv - x).flatten(1).norm(dim=1).max().item() <= 0.5 + 1e-5
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert not torch.equal(x_adv, x)


def test_gaussian_training_lowers_the_loss(sets, tmp_path):
    small, test = sets
    events = list(fit(_mlp(), small, test, method="gaussian", epochs=2,
                      batch_size=32, eval_n=32, eval_steps=1, device="cpu",
                      lr=0.05, run_dir=tmp_path, val_fraction=0.0))
    losses = [e.value for e in events if isinstance(e, Metric)
              and e.name == "train_loss"]
    assert len(losses) == 2
    assert all(math.isfinite(v) for v in losses)
    assert losses[1] < losses[0]
