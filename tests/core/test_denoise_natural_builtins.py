"""The natural-photo built-ins: listed, trained alike, and they denoise the
test photos (never seen in training) better than the noisy input."""

from __future__ import annotations

import pytest
import torch

from explorer.core import data, denoise
from explorer.core.data import natural
from explorer.core.denoise.files import BUILTINS, builtins_for

NATURAL = ("dncnn-natural-standard", "dncnn-natural-hat")


def test_listed_and_trained_for_natural_patches():
    assert set(NATURAL) <= set(denoise.builtin_names())
    assert builtins_for("natural-patches") == list(NATURAL)
    assert "dncnn-natural-hat" not in builtins_for("fashion-mnist-mini")
    for name in NATURAL:
        assert "natural" in BUILTINS[name][0]
        meta = denoise.load_builtin(name).meta
        assert meta.dataset == "natural-patches"
        assert meta.in_shape == (1, 40, 40)
        assert meta.training["method"] == name.rsplit("-", 1)[1]


def test_trained_on_the_same_images_and_steps():
    std, hat = (denoise.load_builtin(n).meta.training for n in NATURAL)
    for key in ("epochs", "init", "train_set", "level", "noise"):
        assert std[key] == hat[key], key
    assert std["init"]  # both fine-tuned from one base
    assert hat["hat_weight"] > 0


@pytest.mark.parametrize("name", NATURAL)
def test_denoises_test_patches_and_a_test_photo(name):
    model = denoise.load_builtin(name)
    x = data.load("natural-patches", "test").as_tensors(0, 16)[0]
    out = denoise.evaluate_batch(model, x, attack="none")
    assert out["psnr_denoised"] > out["psnr_noisy"] + 5
    crop = natural.photo("camera")[None, :, 200:296, 200:296]
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        v = denoise.noise.apply(crop, "gaussian", 0.1, gen)
        gain = denoise.psnr(crop, model(v)) - denoise.psnr(crop, v)
    assert float(gain.mean()) > 5
