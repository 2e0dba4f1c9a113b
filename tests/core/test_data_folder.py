"""Image folders: class sub-folders or a flat folder, any image size."""

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.core import data
from explorer.core.data import DataError


def _save(path, size=(20, 12), mode="RGB", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    array = np.full((size[1], size[0], channels), value, np.uint8).squeeze()
    Image.fromarray(array).convert(mode).save(path)
    return path


def test_class_subfolders(tmp_path):
    _save(tmp_path / "dogs" / "a.png", (40, 30))
    _save(tmp_path / "dogs" / "b.jpg", (64, 64))
    _save(tmp_path / "cats" / "c.bmp", (10, 16), mode="L", value=255)
    (tmp_path / ".hidden").mkdir()
    ds = data.load("image-folder", root=tmp_path)
    assert ds.classes == ("cats", "dogs")
    assert len(ds) == 3
    assert ds.info.shape == (1, 28, 28)
    assert ds.info.classes == ("cats", "dogs")
    x, y = ds[0]
    assert x.shape == (1, 28, 28)
    assert x.dtype == torch.float32
    assert y == 0
    assert torch.allclose(x, torch.ones_like(x))
    xs, ys = ds.as_tensors()
    assert xs.shape == (3, 1, 28, 28)
    assert ys.tolist() == [0, 1, 1]
    assert torch.equal(xs[1], ds[1][0])
    assert float(xs.min()) >= 0.0
    assert float(xs.max()) <= 1.0


def test_flat_folder_is_one_class_rgb_and_custom_shape(tmp_path):
    folder = tmp_path / "my photos"
    _save(folder / "one.png", (50, 20))
    _save(folder / "two.jpeg", (8, 8), mode="L")
    ds = data.load(
        "image-folder", "train", root=folder, channels=3, height=16, width=24
    )
    assert ds.classes == ("my photos",)
    assert ds.info.shape == (3, 16, 24)
    assert len(ds.info.mean) == 3
    xs, ys = ds.as_tensors()
    assert xs.shape == (2, 3, 16, 24)
    assert ys.tolist() == [0, 0]


def test_train_test_subfolders_pick_the_split(tmp_path):
    _save(tmp_path / "train" / "a" / "1.png")
    _save(tmp_path / "train" / "b" / "2.png")
    _save(tmp_path / "train" / "b" / "3.png")
    _save(tmp_path / "test" / "a" / "4.png")
    assert len(data.load("image-folder", "train", root=tmp_path)) == 3
    assert len(data.load("image-folder", "test", root=tmp_path)) == 1


def test_files_that_are_not_images_by_name_are_ignored(tmp_path):
    """As torchvision's ImageFolder: notes, thumbnails caches, hidden files."""
    _save(tmp_path / "a" / "ok.png")
    _save(tmp_path / "b" / "ok.JPG")
    (tmp_path / "a" / "notes.txt").write_text("hello")
    (tmp_path / "a" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" * 64)
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" * 32)
    (tmp_path / "only-notes").mkdir()
    (tmp_path / "only-notes" / "readme.md").write_text("# not a class")
    ds = data.load("image-folder", root=tmp_path)
    assert ds.classes == ("a", "b")
    assert len(ds) == 2
    assert ds.skipped_files == []


def _noise_png(path, size=64):
    raw = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(raw).save(path)
    return path


def test_unreadable_images_are_skipped_and_named(tmp_path):
    _save(tmp_path / "a" / "ok.png")
    _save(tmp_path / "b" / "ok.png")
    truncated = _noise_png(tmp_path / "a" / "truncated.png")
    truncated.write_bytes(truncated.read_bytes()[:200])  # header fine, data cut
    fake = tmp_path / "b" / "fake.jpg"
    fake.write_text("not really a jpeg")
    ds = data.load("image-folder", root=tmp_path)
    assert len(ds) == 2
    assert sorted(ds.skipped_files) == sorted([str(truncated), str(fake)])
    reasons = {e.path: e.why for e in ds.skipped}
    assert "damaged or unreadable" in reasons[truncated]
    assert "not an image file" in reasons[fake]
    x, _ = ds.as_tensors()
    assert x.shape == (2, 1, 28, 28)


def test_a_folder_of_only_unreadable_images_names_them(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(i))
    with pytest.raises(DataError, match=r"no readable images \(5 unreadable images"):
        data.load("image-folder", root=tmp_path)


def test_an_image_damaged_after_loading_is_named_when_read(tmp_path):
    path = _noise_png(tmp_path / "a" / "big.png")
    ds = data.load("image-folder", root=tmp_path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=rf"{path}: damaged or unreadable image"):
        ds[0]


def test_empty_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path}: the folder has no images"):
        data.load("image-folder", root=tmp_path)
    (tmp_path / "class_a").mkdir()
    with pytest.raises(DataError, match="the folder has no images"):
        data.load("image-folder", root=tmp_path)
    with pytest.raises(DataError, match="folder not found"):
        data.load("image-folder", root=tmp_path / "nope")
    with pytest.raises(DataError, match="choose the folder"):
        data.load("image-folder")


def test_bad_params(tmp_path):
    _save(tmp_path / "x.png")
    with pytest.raises(DataError, match="channels must be one of 1, 3"):
        data.load("image-folder", root=tmp_path, channels=2)
    with pytest.raises(DataError, match=r"height must be in \[1, 2048\]"):
        data.load("image-folder", root=tmp_path, height=0)
