"""Training augmentation: random crop with zero padding, horizontal flip."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from trainer_calls import fit

from explorer.core import data, defenses, models
from explorer.core.data.base import ArrayDataset
from explorer.core.params import ParamError
from explorer.core.training.augment import (
    MODES,
    PAD,
    augment,
    batch_generator,
    resolve,
)


def _images(n: int = 48, shape=(3, 32, 32), seed: int = 0) -> torch.Tensor:
    # random pixels: no image equals its mirror or another window of itself
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


def _window_offset(out: torch.Tensor, image: torch.Tensor) -> tuple[int, int] | None:
    """(dy, dx) of the window of the zero-padded ``image`` that ``out`` is."""
    _, h, w = image.shape
    padded = F.pad(image, (PAD, PAD, PAD, PAD))
    for dy in range(2 * PAD + 1):
        for dx in range(2 * PAD + 1):
            if torch.equal(out, padded[:, dy:dy + h, dx:dx + w]):
                return dy, dx
    return None


def test_flip_mirrors_about_half_the_images_and_leaves_the_rest():
    x = _images()
    out = augment(x, "flip", batch_generator(0, 0, 0))
    mirrored = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))  # one or other
    assert 10 <= sum(mirrored) <= 38  # p = 1/2 of 48 (a fixed draw: 24 ± 14)
    assert torch.equal(x, _images())  # the input is left alone


def test_crop_is_a_window_of_the_zero_padded_image_within_4_pixels():
    x = _images()
    out = augment(x, "crop", batch_generator(0, 0, 0))
    assert out.shape == x.shape
    offsets = [_window_offset(o, i) for o, i in zip(out, x, strict=True)]
    assert None not in offsets
    assert len(set(offsets)) > 10  # a different offset per image
    assert any(dy != PAD or dx != PAD for dy, dx in offsets)
    # a window off the centre brings in zero (black) border pixels
    assert (out == 0).any()


def test_crop_flip_is_a_window_possibly_mirrored():
    x = _images()
    out = augment(x, "crop-flip", batch_generator(3, 1, 2))
    flipped = 0
    for o, i in zip(out, x, strict=True):
        plain, mirror = _window_offset(o, i), _window_offset(o.flip(-1), i)
        assert (plain is None) != (mirror is None)
        flipped += mirror is not None
    assert 0 < flipped < len(x)


def test_none_returns_the_batch_and_auto_must_be_resolved_first():
    x = _images(4)
    assert augment(x, "none", batch_generator(0, 0, 0)) is x
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        augment(x, "auto", batch_generator(0, 0, 0))


@pytest.mark.parametrize("mode", ["crop-flip", "crop", "flip"])
def test_the_draws_depend_on_seed_epoch_and_batch_only(mode):
    x = _images()
    again = augment(x, mode, batch_generator(5, 2, 7))
    assert torch.equal(augment(x, mode, batch_generator(5, 2, 7)), again)
    for other in ((5, 2, 8), (5, 3, 7), (6, 2, 7)):
        assert not torch.equal(augment(x, mode, batch_generator(*other)), again)


def test_auto_resolves_by_image_shape():
    assert resolve("auto", (3, 32, 32)) == "crop-flip"  # CIFAR-10, SVHN
    assert resolve("auto", data.info("fashion-mnist-mini").shape) == "none"
    assert resolve("auto", (1, 28, 28)) == "none"
    assert resolve("auto", (3, 64, 64)) == "none"
    for mode in MODES[1:]:
        assert resolve(mode, (1, 28, 28)) == mode
    with pytest.raises(ParamError, match="augment must be one of auto, none"):
        resolve("mixup", (3, 32, 32))


def _colour_set(n: int, seed: int = 0) -> ArrayDataset:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
    info = dataclasses.replace(data.info("fashion-mnist-mini"), name="colour",
                               shape=(3, 32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    return ArrayDataset(images, torch.arange(n) % 10, info.classes, info)


@pytest.mark.parametrize(("augment_mode", "expect"), [("auto", "crop-flip"),
                                                      ("none", "none")])
def test_the_defense_sees_the_augmented_clean_batch(augment_mode, expect, tmp_path,
                                                    monkeypatch):
    train_set, test_set = _colour_set(16), _colour_set(8, seed=1)
    seen: list[torch.Tensor] = []
    standard = defenses.REGISTRY["standard"]
    loss = standard.loss

    def spy(self, model, x, y, generator):
        seen.append(x.clone())
        return loss(self, model, x, y, generator)

    monkeypatch.setattr(standard, "loss", spy)
    torch.manual_seed(0)
    model = models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1)
    events = list(fit(model, train_set, test_set, method="standard", epochs=1,
                      batch_size=8, eval_n=8, eval_steps=1, device="cpu",
                      augment=augment_mode, seed=4, run_dir=tmp_path,
                      val_fraction=0.0))  # all 16 images, in the shuffle's order
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(4))
    for b, x in enumerate(seen):
        clean = train_set.images[perm[8 * b:8 * (b + 1)]].float() / 255
        want = clean if expect == "none" else augment(clean, expect,
                                                      batch_generator(4, 0, b))
        assert torch.equal(x, want)
    assert len(seen) == 2
    best = models.load(events[-1].results["best"])
    assert best.meta.training["augment"] == expect
