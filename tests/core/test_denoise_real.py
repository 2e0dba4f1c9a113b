"""A user's real noisy image: reading, cropping, bad files, ObsAtk without a
clean image (against f(v)) and with a clean reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from explorer.core import data, denoise
from explorer.core.denoise import real
from explorer.core.jobs import Done, Snapshot


def tiny(arch="dncnn", **kw):
    torch.manual_seed(0)
    return denoise.create(arch, width=4, **kw)


def write(path, array):
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def noisy_pair(tmp_path):
    """A real-looking pair: a test image, and it with Gaussian noise (PNGs)."""
    x = data.load("fashion-mnist-mini", "test").as_tensors(0, 1)[0][0, 0].numpy()
    rng = np.random.default_rng(0)
    noisy = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    return (write(tmp_path / "noisy.png", (noisy * 255).round().astype(np.uint8)),
            write(tmp_path / "clean.png", (x * 255).round().astype(np.uint8)))


def test_gray_and_colour_files_become_the_denoisers_channels(tmp_path):
    rng = np.random.default_rng(0)
    gray = write(tmp_path / "g.png", rng.integers(0, 256, (28, 28), np.uint8))
    colour = write(tmp_path / "c.png", rng.integers(0, 256, (36, 40, 3), np.uint8))
    obs = real.prepare(gray, tiny())
    assert obs.noisy.shape == (1, 28, 28)
    assert obs.clean is None
    assert obs.notes == ()
    np.testing.assert_array_equal(obs.noisy[0].numpy() * 255,
                                  np.asarray(Image.open(gray), np.float32))
    obs = real.prepare(colour, tiny())
    assert obs.noisy.shape == (1, 36, 40)  # any size: DnCNN is convolutional
    assert obs.notes == ("colour converted to grayscale (1-channel denoiser)",)
    rgb = real.prepare(gray, tiny(in_shape=(3, 32, 32)))
    assert rgb.noisy.shape == (3, 28, 28)
    assert "grayscale repeated to RGB" in rgb.notes[0]


def test_big_images_are_centre_cropped_and_unet_sides_cut(tmp_path):
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (280, 300), np.uint8)
    obs = real.prepare(write(tmp_path / "big.png", big), tiny())
    assert obs.noisy.shape == (1, 256, 256)
    np.testing.assert_array_equal(obs.noisy[0].numpy() * 255,
                                  big[12:268, 22:278].astype(np.float32))
    assert obs.notes == ("centre crop 300×280 → 256×256: at most 256 pixels a "
                         "side",)
    odd = write(tmp_path / "odd.png", rng.integers(0, 256, (26, 30), np.uint8))
    obs = real.prepare(odd, tiny("unet"))  # two poolings: multiples of 4
    assert obs.noisy.shape == (1, 24, 28)
    assert obs.notes == ("centre crop 30×26 → 28×24: unet needs sides divisible "
                         "by 4",)
    assert real.crop_box(30, 30, 8, 16) == (7, 7, 16, 16)


def test_bad_files_name_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(denoise.DenoiserError, match=r"missing\.png: no such file"):
        real.prepare(tmp_path / "missing.png", tiny())
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(denoise.DenoiserError,
                       match=r"notes\.png: not an image file Pillow can read"):
        real.prepare(tmp_path / "notes.png", tiny())
    small = write(tmp_path / "small.png", np.zeros((3, 3), np.uint8))
    with pytest.raises(denoise.DenoiserError, match=r"small\.png: 3×3 is too "
                       r"small: unet needs at least 4×4 pixels"):
        real.prepare(small, tiny("unet"))
    noisy = write(tmp_path / "n.png", np.zeros((28, 28), np.uint8))
    other = write(tmp_path / "ref.png", np.zeros((28, 30), np.uint8))
    with pytest.raises(denoise.DenoiserError, match=r"ref\.png: the clean reference "
                       r"is 30×28 but n\.png is 28×28; they must be the same size"):
        real.prepare(noisy, tiny(), reference=other)


def _run(model, v, clean=None, rho=0.5, steps=8):
    events = list(real.obsatk_real_live(model, v, clean, rho=rho, steps=steps))
    return [e for e in events if isinstance(e, Snapshot)], events[-1]


def test_without_a_reference_obsatk_attacks_the_deviation_from_f_of_v(noisy_pair):
    model = denoise.load_builtin("dncnn-fmnist-standard")
    v = real.prepare(noisy_pair[0], model).noisy[None]
    target = real.reconstruction(model, v)
    # From d = 0 the deviation and its gradient are exactly zero: stuck there.
    stuck = denoise.ObsAtk(0.5, steps=4)(model, v, target)
    assert torch.count_nonzero(stuck) == 0
    snaps, done = _run(model, v)
    assert isinstance(done, Done)
    assert "clean" not in snaps[0].arrays
    assert "psnr_denoised" not in done.results
    best = snaps[-1]
    assert best.label == "best"
    delta = torch.from_numpy(best.arrays["delta"]).flatten(1)
    assert delta.mean(1).abs().max() < 1e-6
    assert delta.norm(dim=1).max() <= 0.5 + 1e-5
    res = done.results
    assert res["deviation_attacked"][0] > 2 * res["deviation_random"][0] > 0
    assert res["gain_attacked"][0] > res["gain_random"][0] > 0  # no clean image needed
    moved = ((best.arrays["denoised"] - target.numpy()) ** 2).sum()
    assert moved == pytest.approx(res["deviation_attacked"][0], rel=1e-4)


def test_with_a_clean_reference_the_scores_are_scikit_images(noisy_pair):
    model = denoise.load_builtin("dncnn-fmnist-standard")
    obs = real.prepare(noisy_pair[0], model, reference=noisy_pair[1])
    snaps, done = _run(model, obs.noisy[None], obs.clean[None])
    clean = snaps[0].arrays["clean"][0]
    np.testing.assert_array_equal(clean, obs.clean.numpy())
    res = done.results
    for key, image in (("psnr_noisy", snaps[0].arrays["noisy"][0]),
                       ("psnr_denoised", snaps[0].arrays["denoised"][0]),
                       ("psnr_attacked", snaps[-1].arrays["denoised"][0])):
        assert res[key][0] == pytest.approx(
            peak_signal_noise_ratio(clean, image, data_range=1.0))
    assert res["psnr_denoised"][0] > res["psnr_noisy"][0] + 3
    assert res["psnr_attacked"][0] < res["psnr_random"][0]
