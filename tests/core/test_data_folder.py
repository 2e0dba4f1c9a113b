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


def test_non_image_file_is_named(tmp_path):
    _save(tmp_path / "a" / "ok.png")
    bad = tmp_path / "a" / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(DataError, match=rf"{bad}: not a readable image file"):
        data.load("image-folder", root=tmp_path)


def test_truncated_image_is_named_when_read(tmp_path):
    path = _save(tmp_path / "a" / "big.png", (64, 64))
    raw = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(raw).save(path)
    path.write_bytes(path.read_bytes()[:200])
    ds = data.load("image-folder", root=tmp_path)  # header is fine
    with pytest.raises(DataError, match=rf"{path}: cannot decode the image"):
        ds[0]


def test_empty_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path}: the folder is empty"):
        data.load("image-folder", root=tmp_path)
    (tmp_path / "class_a").mkdir()
    with pytest.raises(DataError, match="the folder is empty"):
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
