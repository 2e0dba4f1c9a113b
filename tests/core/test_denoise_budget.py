"""ObsAtk's default budget: RMS 4/255 per pixel whatever the image size."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.core import data, denoise
from explorer.core.denoise.obsatk import DEFAULT_RMS, default_rho, resolve_rho
from explorer.core.jobs import run_to_end


def test_default_rho_is_rms_4_over_255_for_any_size():
    assert DEFAULT_RMS == 4 / 255
    assert default_rho((1, 28, 28)) == pytest.approx(0.44, abs=0.001)  # as before
    assert default_rho((1, 40, 40)) == pytest.approx(4 / 255 * 40)
    assert default_rho((3, 32, 32)) == pytest.approx(4 / 255 * math.sqrt(3 * 1024))
    for shape in ((1, 28, 28), (1, 40, 40), (1, 512, 512)):
        assert denoise.rho_to_rms(default_rho(shape), shape) == pytest.approx(4 / 255)
    assert resolve_rho(0.3, (1, 40, 40)) == 0.3


@pytest.mark.parametrize("side", [28, 40, 96])
def test_obsatk_at_the_default_budget_moves_each_pixel_4_over_255_rms(side):
    torch.manual_seed(0)
    model = denoise.create("dncnn", depth=3, width=4, in_shape=(1, side, side))
    x = torch.rand(2, 1, side, side)
    v = x + 0.1 * torch.randn_like(x)
    d = denoise.ObsAtk(default_rho(tuple(x.shape[1:])), 3)(model, v, x)
    rms = d.flatten(1).pow(2).mean(1).sqrt()
    assert rms.tolist() == pytest.approx([4 / 255] * 2, rel=1e-4)


def test_evaluation_defaults_to_rms_4_over_255_of_the_images():
    torch.manual_seed(0)
    model = denoise.create("dncnn", depth=3, width=4, in_shape=(1, 40, 40))
    patches = data.load("natural-patches", "test")
    out = run_to_end(denoise.denoise_dataset(model, patches, attack="random", n=4))
    assert out["rho"] == pytest.approx(4 / 255 * 40)
    assert out["max_l2"] == pytest.approx(4 / 255 * 40, rel=1e-4)
    scores = denoise.evaluate_batch(model, patches.as_tensors(0, 2)[0],
                                    attack="random")
    assert scores["max_l2"] == pytest.approx(4 / 255 * 40, rel=1e-4)
