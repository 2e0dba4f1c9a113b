"""The 2-D toy sets."""

import pytest
import torch

from explorer.core import data
from explorer.core.data import DataError

TOYS = ["moons", "circles", "spirals", "blobs"]


@pytest.mark.parametrize("name", TOYS)
def test_shapes_classes_and_range(name):
    train = data.load(name, "train")
    test = data.load(name, "test")
    assert len(train) == 1000
    assert len(test) == 500
    x, y = train.as_tensors()
    assert x.shape == (1000, 2)
    assert x.dtype == torch.float32
    assert train[0][0].shape == (2,)
    assert train.classes == data.info(name).classes
    assert set(y.tolist()) == set(range(len(train.classes)))
    counts = torch.bincount(y).tolist()
    assert max(counts) - min(counts) <= 1
    assert float(x.abs().max()) < 2.5


@pytest.mark.parametrize("name", TOYS)
def test_seeded_and_splits_differ(name):
    a = data.load(name, "train", seed=3).as_tensors()
    b = data.load(name, "train", seed=3).as_tensors()
    c = data.load(name, "train", seed=4).as_tensors()
    t = data.load(name, "test", seed=3, n=1000).as_tensors()
    assert torch.equal(a[0], b[0])
    assert torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], t[0])


def test_any_size_and_noise_free():
    ds = data.load("spirals", "train", n=7, noise=0.0)
    assert len(ds) == 7
    assert data.load("moons", n="13").as_tensors()[0].shape == (13, 2)
    x, y = data.load("circles", n=200, noise=0).as_tensors()
    radius = x.norm(dim=1)
    assert torch.allclose(
        radius[y == 0], torch.full_like(radius[y == 0], 1.2), atol=1e-5
    )


def test_param_errors_name_the_parameter():
    with pytest.raises(DataError, match=r"noise must be in \[0, 5\], got -0\.1"):
        data.load("moons", noise=-0.1)
    with pytest.raises(DataError, match="n must be"):
        data.load("blobs", n=-5)
    with pytest.raises(DataError, match="unknown parameter 'colour'"):
        data.load("circles", colour="red")
