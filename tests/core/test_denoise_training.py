"""Denoiser training (standard, HAT, resume, cancel) and the Lab's jobs."""

from __future__ import annotations

import pytest
import torch

from explorer.core import data, denoise, models
from explorer.core.denoise.training import denoising_loss
from explorer.core.jobs import (
    Cancelled,
    CancelToken,
    Done,
    Metric,
    Snapshot,
    run_to_end,
)
from explorer.core.training import checkpoint


@pytest.fixture(scope="module")
def mini():
    return (data.load("fashion-mnist-mini", "train"),
            data.load("fashion-mnist-mini", "test"))


class _Few:
    """The first ``n`` training images, as the trainer reads them."""

    def __init__(self, dataset, n):
        self.images = dataset.images[:n]


def tiny():
    torch.manual_seed(0)
    return denoise.create("dncnn", depth=3, width=4)


def _train(model, mini, run_dir, **kw):
    train, test = mini
    kw.setdefault("epochs", 1)
    return denoise.train_denoiser(model, _Few(train, 64), test, batch_size=32,
                                  run_dir=run_dir, eval_n=8, eval_steps=2,
                                  device="cpu", **kw)


def _cancel_on(events, token, name):
    for event in events:
        if isinstance(event, Metric) and event.name == name:
            token.cancel()


def test_hat_loss_equals_plain_loss_at_weight_zero():
    model = tiny()
    x = torch.rand(4, 1, 28, 28)
    v = x + 0.1 * torch.randn(4, 1, 28, 28)
    plain = denoising_loss(model(v), x)
    attack = denoise.ObsAtk(0.5, steps=2)
    assert torch.equal(denoise.hat_loss(model, v, x, 0.0, attack), plain)
    mixed = denoise.hat_loss(model, v, x, 1.0, attack)
    assert mixed > plain  # the perturbed half has the larger error


def test_training_events_checkpoint_and_best(mini, tmp_path):
    events = list(_train(tiny(), mini, tmp_path, method="hat",
                         params={"hat_weight": 1.0, "rho": 0.4}))
    per_epoch = {e.name for e in events if isinstance(e, Metric) and e.step == 1
                 and e.name != "batch_loss"}
    assert per_epoch == {"train_loss", "test_psnr_clean", "test_psnr_attacked",
                         "test_psnr_noisy", "lr", "epoch_seconds"}
    assert any(isinstance(e, Metric) and e.name == "batch_loss" for e in events)
    done = events[-1]
    assert isinstance(done, Done)
    assert done.results["epochs"] == 1
    best = denoise.load(done.results["best"])
    assert best.meta.training["method"] == "hat"
    assert checkpoint.load(tmp_path / "last.pt")["position"]["epoch"] == 1


def test_resume_continues_exactly(mini, tmp_path):
    whole = tiny()
    run_to_end(_train(whole, mini, tmp_path / "a", epochs=2))
    token = CancelToken()
    # cancelled after epoch 1's metrics: stops at the first batch of epoch 2
    events = _train(tiny(), mini, tmp_path / "b", epochs=2, token=token)
    with pytest.raises(Cancelled):
        _cancel_on(events, token, "epoch_seconds")
    resumed = tiny()
    run_to_end(_train(resumed, mini, tmp_path / "b", epochs=2, resume=True))
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(checkpoint.CheckpointError, match="its method is 'standard'"):
        run_to_end(_train(tiny(), mini, tmp_path / "b", epochs=2, resume=True,
                          method="hat"))


def test_cancel_saves_last_checkpoint(mini, tmp_path):
    token = CancelToken()
    events = _train(tiny(), mini, tmp_path, token=token)
    with pytest.raises(Cancelled):
        _cancel_on(events, token, "batch_loss")
    assert checkpoint.load(tmp_path / "last.pt")["position"]["batch"] >= 1


def test_bad_training_values(mini, tmp_path):
    with pytest.raises(ValueError, match="method must be one of standard, hat"):
        run_to_end(_train(tiny(), mini, tmp_path, method="pgd"))
    with pytest.raises(ValueError, match=r"sigma must be in \[0, 1\]"):
        run_to_end(_train(tiny(), mini, tmp_path, params={"level": -0.2}))


def test_obsatk_live_snapshots_every_step():
    x = data.load("fashion-mnist-mini", "test").as_tensors(0, 2)[0]
    events = list(denoise.obsatk_live(tiny(), x, rho=0.4, steps=3))
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert [s.step for s in snaps] == [0, 1, 2, 3, 3]
    assert snaps[-1].label == "best"
    assert snaps[0].arrays["noisy"].shape == (2, 1, 28, 28)
    assert snaps[1].arrays["loss"].shape == (2,)
    done = events[-1].results
    assert min(done["psnr_attacked"][i] - done["psnr_denoised"][i]
               for i in range(2)) < 0


def test_psnr_vs_rho_and_classifier_accuracy(mini):
    test = mini[1]
    res = run_to_end(denoise.psnr_vs_rho({"tiny": tiny()}, test, [0.0, 0.5],
                                         steps=2, n=8))
    curve, rand = res["curves"]["psnr/tiny"], res["curves"]["psnr_random/tiny"]
    assert curve[0] == rand[0]
    assert curve[1] < rand[1]
    clf = models.load_builtin("fmnist-cnn-standard")
    acc = run_to_end(denoise.classifier_accuracy(clf, tiny(), test, rho=0.5,
                                                 steps=3, n=16))
    assert set(acc) >= {"acc_clean", "acc_noisy", "acc_denoised", "acc_obsatk",
                        "acc_adaptive"}
    assert acc["acc_adaptive"] <= acc["acc_denoised"]


def test_the_same_seed_gives_the_same_denoiser_run(tmp_path, mini):
    """The run's seed draws the initial weights too (the Lab and the CLI)."""
    from explorer.core.denoise.runs import train_denoiser_run

    config = {"data": "fashion-mnist-mini", "arch": "dncnn",
              "arch_params": {"depth": 3, "width": 4}, "method": "standard",
              "params": {"noise": "gaussian", "level": 0.1, "hat_weight": 1.0,
                         "rho": 0.1, "attack_steps": 1},
              "epochs": 1, "batch_size": 32, "lr": 1e-3, "eval_n": 8,
              "eval_steps": 1, "limit_train": 64, "seed": 0}

    def final(config, folder):
        run_to_end(train_denoiser_run(config, run_dir=tmp_path / folder,
                                      train_set=mini[0], test_set=mini[1],
                                      device="cpu", token=CancelToken()))
        return checkpoint.load(tmp_path / folder / "last.pt")["model"]

    first, again = final(config, "a"), final(config, "b")
    other = final({**config, "seed": 1}, "c")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
