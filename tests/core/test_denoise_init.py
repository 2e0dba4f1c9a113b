"""An untrained denoiser is the identity, so a short training run improves on
the noisy input (with PyTorch's default init it ended below it)."""

from __future__ import annotations

import pytest
import torch

from explorer.core import denoise
from explorer.core.jobs import run_to_end


@pytest.mark.parametrize(("arch", "params"), [
    ("dncnn", {"depth": 4, "width": 8}),
    ("dncnn", {"depth": 4, "width": 8, "batch_norm": False}),
    ("unet", {"width": 8}),
])
def test_untrained_denoisers_are_the_identity_in_both_modes(arch, params):
    torch.manual_seed(0)
    model = denoise.create(arch, **params)
    v = torch.rand(8, 1, 28, 28) + 0.1 * torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        for training in (True, False):  # batch norm: batch vs running statistics
            model.train(training)
            assert torch.equal(model(v), v)


def test_a_short_training_run_beats_the_noisy_input(sets, tmp_path):
    # 32 Adam steps: the shape of a quick run from the Train tab, smaller.
    train, test = sets
    torch.manual_seed(0)
    model = denoise.create("dncnn", depth=3, width=8)
    res = run_to_end(denoise.train_denoiser(
        model, train, test, epochs=2, batch_size=16, run_dir=tmp_path,
        eval_n=32, eval_steps=1, device="cpu"))
    assert res["psnr_noisy"] == pytest.approx(20.0, abs=0.2)  # sigma 0.1
    assert res["psnr_clean"] > res["psnr_noisy"] + 0.5
