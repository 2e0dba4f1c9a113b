"""Registry, built-in Fashion-MNIST subset and ArrayDataset."""

import numpy as np
import pytest
import torch

from explorer.core import data
from explorer.core.data import ArrayDataset, DataError, DataInfo

EXPECTED = {
    "fashion-mnist-mini", "mnist", "fashion-mnist", "cifar10", "svhn",
    "image-folder", "moons", "circles", "spirals", "blobs", "natural-patches",
}  # fmt: skip


def test_names_and_infos():
    assert set(data.names()) == EXPECTED
    for name in data.names():
        meta = data.info(name)
        assert isinstance(meta, DataInfo)
        assert meta.name == name
        assert meta.kind in {"builtin", "natural", "torchvision", "folder", "toy"}
        assert "test" in meta.splits
        assert len(meta.mean) == len(meta.std)
        if meta.kind != "toy":
            assert len(meta.mean) == meta.shape[0]
        assert meta.title
        assert meta.description
    assert data.info("cifar10").needs_root
    assert data.info("cifar10").downloadable
    assert not data.info("fashion-mnist-mini").needs_root


def test_unknown_name_lists_known_ones():
    with pytest.raises(
        DataError, match=r"unknown data set 'imagenet'.*fashion-mnist-mini"
    ):
        data.info("imagenet")
    with pytest.raises(DataError, match="imagenet"):
        data.load("imagenet")


def test_unknown_split_names_allowed_ones():
    with pytest.raises(DataError, match=r"no split 'validation'.*test, train"):
        data.load("fashion-mnist-mini", split="validation")
    with pytest.raises(DataError, match="extra"):
        data.load("mnist", split="extra", root="/nonexistent")


def test_builtin_takes_no_params():
    with pytest.raises(DataError, match="takes no parameters"):
        data.load("fashion-mnist-mini", noise=0.1)


@pytest.mark.parametrize(("split", "n"), [("train", 6000), ("test", 1000)])
def test_builtin_lengths_balance_and_range(split, n):
    ds = data.load("fashion-mnist-mini", split=split)
    assert isinstance(ds, ArrayDataset)
    assert len(ds) == n
    assert ds.classes[0] == "T-shirt/top"
    assert ds.classes[-1] == "Ankle boot"
    assert ds.info.name == "fashion-mnist-mini"
    x, y = ds.as_tensors()
    assert x.shape == (n, 1, 28, 28)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert float(x.min()) >= 0.0
    assert float(x.max()) <= 1.0
    assert float(x.max()) == 1.0  # really scaled by 1/255, not left at 0..1/255
    assert torch.bincount(y, minlength=10).tolist() == [n // 10] * 10


def test_as_tensors_matches_getitem():
    ds = data.load("fashion-mnist-mini")
    x, y = ds.as_tensors(10, 20)
    assert x.shape[0] == 10
    for i in range(10):
        xi, yi = ds[10 + i]
        assert isinstance(yi, int)
        assert xi.dtype == torch.float32
        assert xi.shape == (1, 28, 28)
        assert torch.equal(xi, x[i])
        assert yi == int(y[i])


def test_as_tensors_does_not_alias_storage():
    ds = data.load("fashion-mnist-mini")
    x, y = ds.as_tensors(0, 4)
    x.zero_()
    y.zero_()
    assert float(ds[0][0].sum()) > 0 or int(ds.labels[:4].sum()) > 0


def test_missing_or_corrupt_npz_says_how_to_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_RESOURCES", str(tmp_path))
    with pytest.raises(
        DataError, match=r"fashion-mnist-mini\.npz.*not found.*make_fmnist"
    ):
        data.load("fashion-mnist-mini")
    (tmp_path / "fashion-mnist-mini.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(
        DataError, match=r"fashion-mnist-mini\.npz.*corrupt.*make_fmnist"
    ):
        data.load("fashion-mnist-mini")
    np.savez(tmp_path / "fashion-mnist-mini.npz", x_train=np.zeros((2, 28, 28)))
    with pytest.raises(DataError, match=r"missing arrays.*make_fmnist"):
        data.load("fashion-mnist-mini")


def test_array_dataset_checks_inputs():
    meta = data.info("moons")
    with pytest.raises(DataError, match="3 images but 2 labels"):
        ArrayDataset(np.zeros((3, 2), np.float32), [0, 1], meta.classes, meta)
    with pytest.raises(DataError, match=r"labels must be in 0\.\.1"):
        ArrayDataset(np.zeros((2, 2), np.float32), [0, 5], meta.classes, meta)
    ro = np.zeros((2, 2), np.float32)
    ro.flags.writeable = False  # torch would warn if it shared this buffer
    ds = ArrayDataset(ro, np.array([0, 1]), meta.classes, meta)
    assert ds[1][1] == 1
