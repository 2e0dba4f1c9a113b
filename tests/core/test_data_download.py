"""The download job, against file:// URLs put in place of torchvision's lists."""

import hashlib
import itertools
import pickle
import tarfile

import numpy as np
import pytest
import scipy.io
from torchvision import datasets as tvd

from explorer.core import data
from explorer.core.data import DataError
from explorer.core.data import downloads as download_module
from explorer.core.data.idx import write_idx
from explorer.core.jobs import Cancelled, CancelToken, Done, Log, Progress, run_to_end

FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def _md5(path):
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local 'server' folder of Fashion-MNIST files, wired into torchvision."""
    server = tmp_path / "server"
    server.mkdir()
    rng = np.random.default_rng(0)
    write_idx(server / FILES[0], rng.integers(0, 256, (300, 28, 28), dtype=np.uint8))
    write_idx(server / FILES[1], np.arange(300, dtype=np.uint8) % 10)
    write_idx(server / FILES[2], rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    write_idx(server / FILES[3], np.arange(20, dtype=np.uint8) % 10)
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", [server.as_uri() + "/"])
    monkeypatch.setattr(
        tvd.FashionMNIST, "resources", [(f, _md5(server / f)) for f in FILES]
    )
    return server


def test_download_then_load(tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(download_module, "CHUNK", 1024)  # many chunks, few events
    dest = tmp_path / "data"
    events = list(data.download("fashion-mnist", dest))
    done = events[-1]
    assert isinstance(done, Done)
    assert done.results["root"] == str(dest)
    raw = dest / "FashionMNIST" / "raw"
    assert str(raw / FILES[0]) in done.results["files"]
    assert str(raw / "train-images-idx3-ubyte") in done.results["files"]
    progress = [e for e in events if isinstance(e, Progress)]
    first = [e for e in progress if e.label == FILES[0]]
    size = (mirror / FILES[0]).stat().st_size
    assert size // 1024 > 150  # the throttle has something to do
    assert 2 <= len(first) <= 102
    assert first[-1].done == first[-1].total == size
    assert all(a.done <= b.done for a, b in itertools.pairwise(first))
    assert not list(raw.glob(".*tmp"))
    ds = data.load("fashion-mnist", "train", root=dest)
    assert len(ds) == 300

    again = list(data.download("fashion-mnist", dest))
    assert sum(isinstance(e, Log) and "already there" in e.message for e in again) == 4


def test_mirror_fallback(tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(
        tvd.FashionMNIST,
        "mirrors",
        [(tmp_path / "gone").as_uri() + "/", *tvd.FashionMNIST.mirrors],
    )
    events = list(data.download("fashion-mnist", tmp_path / "d"))
    warnings = [e for e in events if isinstance(e, Log) and e.level == "warning"]
    assert len(warnings) == 4
    assert isinstance(events[-1], Done)


def test_md5_mismatch(tmp_path, mirror, monkeypatch):
    resources = list(tvd.FashionMNIST.resources)
    resources[2] = (FILES[2], "0" * 32)
    monkeypatch.setattr(tvd.FashionMNIST, "resources", resources)
    dest = tmp_path / "data"
    with pytest.raises(DataError) as err:
        run_to_end(data.download("fashion-mnist", dest))
    msg = str(err.value)
    assert FILES[2] in msg
    assert "MD5" in msg
    assert "0" * 32 in msg
    raw = dest / "FashionMNIST" / "raw"
    assert not (raw / FILES[2]).exists()
    assert not list(raw.glob(".*tmp"))


def test_cancel_stops_and_leaves_no_partial_file(tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(download_module, "CHUNK", 1024)
    token = CancelToken()
    dest = tmp_path / "data"
    seen = []

    def drain():
        for event in data.download("fashion-mnist", dest, token=token):
            if isinstance(event, Progress) and event.done > 0:
                seen.append(event)
                token.cancel()

    with pytest.raises(Cancelled):
        drain()
    assert len(seen) == 1
    raw = dest / "FashionMNIST" / "raw"
    assert not (raw / FILES[0]).exists()
    assert not list(raw.glob(".*"))


def test_load_with_download_flag(tmp_path, mirror, monkeypatch):
    ds = data.load("fashion-mnist", root=tmp_path / "d", download=True)
    assert len(ds) == 20
    # Files in place: download=True must not go back to the network.
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["file:///nonexistent/"])
    (tmp_path / "d" / "FashionMNIST" / "raw" / FILES[0]).unlink()
    assert (
        len(data.load("fashion-mnist", "train", root=tmp_path / "d", download=True))
        == 300
    )


def test_cifar_archive_is_extracted(tmp_path, monkeypatch):
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": np.zeros((3, 3072), np.uint8), "labels": [0, 1, 2]}
        (src / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [f"c{i}" for i in range(10)]}
    (src / "batches.meta").write_bytes(pickle.dumps(meta))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    monkeypatch.setattr(tvd.CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", _md5(archive))
    dest = tmp_path / "dest"
    result = run_to_end(data.download("cifar10", dest))
    assert str(dest / "cifar-10-batches-py") in result["files"]
    assert len(data.load("cifar10", "train", root=dest)) == 15


def test_svhn_splits(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    x = np.zeros((32, 32, 3, 2), np.uint8)
    scipy.io.savemat(src / "test_32x32.mat", {"X": x, "y": np.ones((2, 1), np.uint8)})
    path = src / "test_32x32.mat"
    split_list = dict(tvd.SVHN.split_list)
    split_list["test"] = [path.as_uri(), "test_32x32.mat", _md5(path)]
    monkeypatch.setattr(tvd.SVHN, "split_list", split_list)
    dest = tmp_path / "dest"
    result = run_to_end(data.download("svhn", dest, splits=["test"]))
    assert result["files"] == [str(dest / "test_32x32.mat")]
    assert len(data.load("svhn", root=dest)) == 2
    with pytest.raises(DataError, match="no split 'valid'"):
        list(data.download("svhn", dest, splits=["valid"]))


def test_not_downloadable():
    with pytest.raises(DataError, match="cannot be downloaded"):
        list(data.download("moons", "/tmp/x"))
    with pytest.raises(DataError, match="choose a folder"):
        list(data.download("mnist", None))
