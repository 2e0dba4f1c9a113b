"""Denoisers: projection, ObsAtk, noise models, metrics, files, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from explorer.core import data, denoise, models
from explorer.core.denoise import noise
from explorer.core.params import ParamError


def tiny(**kw):
    torch.manual_seed(0)
    return denoise.create("dncnn", depth=3, width=4, **kw)


@pytest.mark.parametrize("rho", [0.0, 0.1, 1.0, 5.0])
def test_projection_is_exact_and_idempotent(rho):
    gen = torch.Generator().manual_seed(1)
    d = torch.randn(6, 1, 8, 8, generator=gen) * 3 + 0.5
    d[0] = 0.001  # already small: only its mean goes
    p = denoise.project(d, rho)
    assert p.flatten(1).mean(1).abs().max() < 1e-6
    assert (p.flatten(1).norm(dim=1) <= rho + 1e-6).all()
    torch.testing.assert_close(denoise.project(p, rho), p, atol=1e-6, rtol=0)
    # the closest feasible point: no feasible point is nearer to d
    q = denoise.project(torch.randn(6, 1, 8, 8, generator=gen), rho)
    assert ((d - p).flatten(1).norm(dim=1) <= (d - q).flatten(1).norm(dim=1)
            + 1e-6).all()


def test_random_baseline_has_zero_mean_and_exact_norm():
    d = denoise.random_baseline((5, 1, 28, 28), 0.44,
                                torch.Generator().manual_seed(0))
    assert d.flatten(1).mean(1).abs().max() < 1e-6
    np.testing.assert_allclose(d.flatten(1).norm(dim=1).numpy(), 0.44, rtol=1e-5)
    assert denoise.rho_to_rms(denoise.rms_to_rho(4 / 255, (1, 28, 28)),
                              (1, 28, 28)) == pytest.approx(4 / 255)


def test_obsatk_stays_in_budget_and_raises_the_error():
    model = tiny()
    x = data.load("fashion-mnist-mini", "test").as_tensors(0, 4)[0]
    v = noise.apply(x, "gaussian", 0.1, torch.Generator().manual_seed(0))
    steps = list(denoise.ObsAtk(0.5, steps=5).run(model, v, x))
    assert [s.step for s in steps] == [0, 1, 2, 3, 4, 5, 6]
    best = steps[-1]
    assert best.delta.flatten(1).mean(1).abs().max() < 1e-6
    assert (best.delta.flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()
    assert (best.loss >= steps[0].loss).all()
    assert (best.loss > steps[0].loss).any()
    assert model.training is False
    assert all(p.requires_grad
                                           for p in model.parameters())


@pytest.mark.slow
def test_obsatk_beats_the_random_baseline_on_the_builtin_denoiser():
    model = denoise.load_builtin("dncnn-fmnist-standard")
    x = data.load("fashion-mnist-mini", "test").as_tensors(0, 16)[0]
    gen = torch.Generator().manual_seed(0)
    v = noise.apply(x, "gaussian", 0.1, gen)
    rho = denoise.rms_to_rho(4 / 255, (1, 28, 28))
    err = denoise.obsatk.reconstruction_error
    with torch.no_grad():
        base = err(model, v, x)
        rand = err(model, v + denoise.random_baseline(tuple(v.shape), rho, gen), x)
    adv = err(model, v + denoise.ObsAtk(rho, steps=10)(model, v, x), x)
    assert (adv - base).mean() > 2 * (rand - base).mean()
    assert (adv - base).mean() > 0


def test_noise_models_are_seeded_and_keep_their_ranges():
    x = torch.rand(2, 1, 8, 8)
    for kind, level in (("gaussian", 0.1), ("poisson", 30.0), ("salt-pepper", 0.2)):
        a = noise.apply(x, kind, level, torch.Generator().manual_seed(3))
        b = noise.apply(x, kind, level, torch.Generator().manual_seed(3))
        assert torch.equal(a, b)
        assert not torch.equal(a, x)
    sp = noise.apply(x, "salt-pepper", 1.0, torch.Generator().manual_seed(0))
    assert set(sp.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(noise.apply(x, "gaussian", 0.0), x)


def test_real_noisy_image_loads(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((10, 12), 128, np.uint8)).save(tmp_path / "n.png")
    img = noise.load_real(tmp_path / "n.png")
    assert img.shape == (1, 10, 12)
    assert img.max() == pytest.approx(128 / 255)
    (tmp_path / "bad.png").write_text("no")
    with pytest.raises(denoise.DenoiserError, match=r"bad\.png: not an image file"):
        noise.load_real(tmp_path / "bad.png")


def test_psnr_and_ssim_agree_with_scikit_image():
    rng = np.random.default_rng(0)
    clean = rng.random((3, 1, 16, 16))
    test = clean + 0.05 * rng.standard_normal(clean.shape)
    for i in range(3):
        assert denoise.psnr(clean, test)[i] == pytest.approx(
            peak_signal_noise_ratio(clean[i], test[i], data_range=1.0))
        assert denoise.ssim(clean, test)[i] == pytest.approx(
            structural_similarity(clean[i, 0], test[i, 0], data_range=1.0))
    # a uniform error of 0.1 is exactly 20 dB
    assert denoise.psnr(clean[0], clean[0] + 0.1)[0] == pytest.approx(20.0)
    assert denoise.psnr(clean[0], clean[0])[0] == np.inf
    rgb = rng.random((3, 16, 16))
    assert denoise.ssim(rgb, rgb)[0] == pytest.approx(1.0)


def test_save_load_round_trip_and_registry(tmp_path):
    assert denoise.names() == ["dncnn", "unet"]
    assert [p.name for p in denoise.spec("dncnn")] == ["depth", "width",
                                                       "batch_norm"]
    for arch in denoise.names():
        torch.manual_seed(0)
        model = denoise.create(arch, width=4)
        with torch.no_grad():  # an untrained denoiser is the identity
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        path = denoise.save(model, tmp_path / f"{arch}.safetensors")
        back = denoise.load(path)
        x = torch.rand(2, 1, 28, 28)
        torch.testing.assert_close(back(x), model(x))
        assert back.meta.arch == arch
        assert back.meta.source == str(path)
    unet = denoise.create("unet", width=4)
    with torch.no_grad():
        assert unet(torch.rand(1, 1, 28, 28)).shape == (1, 1, 28, 28)


def test_bad_inputs_give_clear_messages(tmp_path):
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ParamError, match=r"sigma must be in \[0, 1\].*got -0\.1"):
        noise.apply(x, "gaussian", -0.1)
    with pytest.raises(ParamError, match=r"rho must be a finite number >= 0.*-1"):
        denoise.ObsAtk(-1.0)
    with pytest.raises(ParamError, match="noise must be one of"):
        noise.apply(x, "speckle", 0.1)
    with pytest.raises(denoise.DenoiserError,
                       match=r"3×32×32 does not fit.*1×28×28.*1 channel"):
        denoise.check_input(tiny(), torch.rand(1, 3, 32, 32))
    with pytest.raises(denoise.DenoiserError, match="divisible by 4"):
        denoise.check_input(denoise.create("unet"), torch.rand(1, 1, 30, 30))
    with pytest.raises(denoise.DenoiserError, match="different sizes: 1×28×28"):
        denoise.psnr(torch.rand(1, 28, 28), torch.rand(1, 32, 32))
    path = models.save(models.create("mlp", hidden=8, depth=1),
                       tmp_path / "clf.safetensors")
    with pytest.raises(denoise.DenoiserError,
                       match=r"clf\.safetensors: is a classifier, not a denoiser"):
        denoise.load(path)
    with pytest.raises(denoise.DenoiserError, match="unknown built-in denoiser"):
        denoise.load_builtin("nope")
    with pytest.raises(denoise.DenoiserError, match="unknown denoiser architecture"):
        denoise.create("resnet")
    with pytest.raises(ParamError, match="depth"):
        denoise.create("dncnn", depth=1)
