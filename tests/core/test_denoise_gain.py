"""How much of a perturbation passes through a denoiser."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.core import data, denoise
from explorer.core.denoise.obsatk import pass_through_gain
from explorer.core.jobs import Done


class _Mean(nn.Module):
    """Replaces every pixel by the image's mean: removes any zero-mean change."""

    def forward(self, v):
        return v.mean(dim=(1, 2, 3), keepdim=True).expand_as(v)


def test_identity_passes_everything_and_a_mean_filter_nothing_zero_mean():
    v = torch.rand(4, 1, 8, 8)
    d = denoise.random_baseline((4, 1, 8, 8), 0.5, torch.Generator().manual_seed(0))
    assert torch.allclose(pass_through_gain(nn.Identity(), v, d), torch.ones(4),
                          atol=1e-3)
    assert pass_through_gain(_Mean(), v, d).abs().max() < 1e-3


def test_obsatk_finds_directions_the_builtin_denoiser_passes_through():
    x = data.load("fashion-mnist-mini", "test").as_tensors(0, 16)[0]
    gen = torch.Generator().manual_seed(0)
    v = denoise.noise.apply(x, "gaussian", 0.1, gen)
    model = denoise.load_builtin("dncnn-fmnist-standard")
    rho = denoise.rms_to_rho(4 / 255, (1, 28, 28))
    along_attack = pass_through_gain(model, v, denoise.ObsAtk(rho, 10)(model, v, x))
    along_random = pass_through_gain(
        model, v, denoise.random_baseline(tuple(v.shape), rho, gen))
    assert along_attack.mean() > 0.8
    assert along_random.mean() < 0.6
    assert model.training is False


@pytest.mark.parametrize("t", [1e-4, 1e-2])
def test_gain_is_a_first_order_quantity(t):
    """A linear denoiser's gain does not depend on the step used to measure it."""
    torch.manual_seed(0)
    lin = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    v, d = torch.rand(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    assert torch.allclose(pass_through_gain(lin, v, d, t),
                          pass_through_gain(lin, v, d, 1e-3), rtol=1e-2)


def test_live_obsatk_reports_the_gains():
    x = data.load("fashion-mnist-mini", "test").as_tensors(0, 4)[0]
    model = denoise.load_builtin("dncnn-fmnist-standard")
    done = next(e for e in denoise.obsatk_live(model, x, rho=0.44, steps=5)
            if isinstance(e, Done)).results
    assert len(done["gain_attacked"]) == len(done["gain_random"]) == 4
    assert min(done["gain_attacked"]) > max(done["gain_random"])
