"""natural-patches: offline, deterministic, split by photo, whole test photos."""

from __future__ import annotations

import hashlib
import socket

import pytest

from explorer.core import data
from explorer.core.data import natural


def _digest(dataset) -> str:
    return hashlib.sha256(dataset.images.numpy().tobytes()).hexdigest()


@pytest.fixture
def offline(monkeypatch):
    """No network: a download (scikit-image's pooch) would fail loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("natural-patches tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_photos_ship_with_scikit_image_and_load_offline(offline):
    for name in natural.PHOTO_FILES:
        assert natural.photo_path(name).is_file(), name
    natural._photo.cache_clear()
    natural._split.cache_clear()
    for split in ("train", "test"):
        ds = data.load("natural-patches", split)
        assert ds.images.shape[1:] == (1, 40, 40)
        assert ds.images.dtype.is_floating_point is False  # uint8, scaled on use
        assert int(ds.labels.abs().sum()) == 0  # labels unused
    whole = natural.test_photos()
    assert list(whole) == ["camera", "chelsea", "gravel"]
    assert tuple(whole["camera"].shape) == (1, 512, 512)
    assert 0.0 <= float(whole["chelsea"].min()) < float(whole["chelsea"].max()) <= 1.0


def test_same_bytes_every_load():
    first = {s: _digest(data.load("natural-patches", s)) for s in ("train", "test")}
    natural._photo.cache_clear()
    natural._split.cache_clear()  # read and cut the photos again
    again = {s: _digest(data.load("natural-patches", s)) for s in ("train", "test")}
    assert first == again
    assert len(data.load("natural-patches", "train")) == 4591
    assert len(data.load("natural-patches", "test")) == 365  # 144 + 77 + 144


def test_split_by_photo_never_shares_a_scene():
    train, test = set(natural.PHOTOS["train"]), set(natural.PHOTOS["test"])
    assert not train & test
    # the stereo pair is one scene; chelsea and cat are one file: neither may
    # straddle the split (the right view and "cat" are not used at all)
    assert "motorcycle_right" not in train | test
    assert "cat" not in train | test
    assert set(natural.PHOTO_FILES) == train | test
    # and no test patch occurs among the training patches, byte for byte
    seen = {p.tobytes() for p in data.load("natural-patches", "train").images.numpy()}
    assert not any(p.tobytes() in seen
                   for p in data.load("natural-patches", "test").images.numpy())


def test_test_patches_are_the_whole_photos_cut_on_a_grid():
    test = data.load("natural-patches", "test").images
    camera = natural.photo("camera")
    assert bool((test[0, 0].float() / 255 == camera[0, :40, :40]).all())
    assert bool((test[1, 0].float() / 255 == camera[0, :40, 40:80]).all())


def test_bad_uses_are_named():
    with pytest.raises(data.DataError, match="natural-patches takes no parameters"):
        data.load("natural-patches", "test", n=3)
    with pytest.raises(data.DataError, match="no split 'extra'"):
        data.load("natural-patches", "extra")
    with pytest.raises(data.DataError, match="unknown photo 'lena'"):
        natural.photo("lena")
