"""MNIST-likes, CIFAR-10 and SVHN: tiny files in the real formats, real loaders."""

import os
import pickle
from typing import ClassVar

import numpy as np
import pytest
import scipy.io
import torch

from explorer.core import data
from explorer.core.data import ArrayDataset, DataError
from explorer.core.data.idx import write_idx

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]  # fmt: skip


def make_mnist(root, folder="FashionMNIST", gz=False, size=28, n_train=6, n_test=4):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        arrays[prefix] = (images, labels)
    return raw, arrays


def make_cifar(root, n=3, data_shape=None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        pixels = rng.integers(0, 256, data_shape or (n, 3072), dtype=np.uint8)
        entry = {
            "batch_label": name,
            "labels": [int(i % 10) for i in range(n)],
            "data": pixels,
            "filenames": [f"img{i}.png" for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        batches[name] = pixels
    meta = {"label_names": CIFAR_NAMES, "num_cases_per_batch": n, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder, batches


def make_svhn(root, split="test", n=5, x=None):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8) if x is None else x
    y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)  # SVHN labels 1..10
    scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
    return root / f"{split}_32x32.mat", x, y


# --- MNIST and Fashion-MNIST --------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")]
)
def test_mnist_like_loads_plain_and_gz(tmp_path, name, folder, gz):
    _, arrays = make_mnist(tmp_path, folder, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = data.load(name, split, root=tmp_path)
        images, labels = arrays[prefix]
        assert isinstance(ds, ArrayDataset)
        assert len(ds) == len(images)
        assert ds.classes == data.info(name).classes
        assert ds.info.name == name
        x, y = ds.as_tensors()
        assert x.shape == (len(images), 1, 28, 28)
        assert x.dtype == torch.float32
        expected = torch.from_numpy(images.astype(np.float32) / 255.0)
        assert torch.allclose(x[:, 0], expected)
        assert y.tolist() == labels.tolist()
        assert ds[1][1] == int(labels[1])


def test_mnist_accepts_a_pick_inside_the_layout(tmp_path):
    raw, _ = make_mnist(tmp_path, "MNIST")
    assert len(data.load("mnist", root=raw)) == 4
    assert len(data.load("mnist", root=raw.parent)) == 4


def test_no_root_asks_to_choose_a_folder():
    with pytest.raises(DataError, match=r"Fashion-MNIST.*choose the folder"):
        data.load("fashion-mnist")
    with pytest.raises(DataError, match=r"CIFAR-10.*choose the folder"):
        data.load("cifar10", download=True)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=rf"{missing}: folder not found"):
        data.load("mnist", root=missing)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        data.load("mnist", root=tmp_path / "file")


def test_missing_file_names_file_and_layout(tmp_path):
    raw, _ = make_mnist(tmp_path, "FashionMNIST")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as err:
        data.load("fashion-mnist", root=tmp_path)
    msg = str(err.value)
    assert str(raw / "t10k-labels-idx1-ubyte") in msg
    assert "file not found" in msg
    assert "FashionMNIST/raw/" in msg


def test_truncated_idx(tmp_path):
    raw, _ = make_mnist(tmp_path, "MNIST")
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=rf"{path}: truncated or corrupt IDX"):
        data.load("mnist", root=tmp_path)


def test_corrupt_gz(tmp_path):
    raw, _ = make_mnist(tmp_path, "MNIST", gz=True)
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DataError, match=rf"{path}: not a readable gzip"):
        data.load("mnist", "train", root=tmp_path)


def test_wrong_magic(tmp_path):
    raw, _ = make_mnist(tmp_path, "MNIST")
    path = raw / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])
    with pytest.raises(DataError, match=rf"{path}: not an IDX file \(bad magic"):
        data.load("mnist", root=tmp_path)


def test_images_of_another_shape(tmp_path):
    raw, _ = make_mnist(tmp_path, "MNIST", size=32)
    with pytest.raises(DataError) as err:
        data.load("mnist", root=tmp_path)
    msg = str(err.value)
    assert str(raw / "t10k-images-idx3-ubyte") in msg
    assert "32×32" in msg
    assert "28×28" in msg


def test_label_count_mismatch(tmp_path):
    raw, _ = make_mnist(tmp_path, "MNIST")
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="3 labels but t10k-images-idx3-ubyte has 4"):
        data.load("mnist", root=tmp_path)


def test_labels_file_with_image_dims(tmp_path):
    raw, _ = make_mnist(tmp_path, "MNIST")
    path = raw / "t10k-labels-idx1-ubyte"
    write_idx(path, np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(DataError, match=rf"{path}: expected labels as uint8 with 1"):
        data.load("mnist", root=tmp_path)


# --- CIFAR-10 ------------------------------------------------------------------


@pytest.mark.parametrize(("split", "n_batches"), [("train", 5), ("test", 1)])
def test_cifar_loads(tmp_path, split, n_batches):
    _, batches = make_cifar(tmp_path)
    ds = data.load("cifar10", split, root=tmp_path)
    assert len(ds) == 3 * n_batches
    assert ds.classes == tuple(CIFAR_NAMES)
    x, y = ds.as_tensors()
    assert x.shape == (3 * n_batches, 3, 32, 32)
    first = "data_batch_1" if split == "train" else "test_batch"
    expected = batches[first][0].reshape(3, 32, 32).astype(np.float32) / 255.0
    assert torch.allclose(x[0], torch.from_numpy(expected))
    assert torch.equal(ds[0][0], x[0])
    assert y[:3].tolist() == [0, 1, 2]


def test_cifar_pick_inside_batches_folder(tmp_path):
    folder, _ = make_cifar(tmp_path)
    assert len(data.load("cifar10", root=folder)) == 3


def test_cifar_missing_batch(tmp_path):
    folder, _ = make_cifar(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(
        DataError, match=r"data_batch_4: file not found.*cifar-10-batches"
    ):
        data.load("cifar10", root=tmp_path)


def test_cifar_not_a_pickle(tmp_path):
    folder, _ = make_cifar(tmp_path)
    (folder / "test_batch").write_bytes(b"this is not a pickle at all")
    with pytest.raises(
        DataError, match=rf"{folder / 'test_batch'}: not a CIFAR-10 python"
    ):
        data.load("cifar10", root=tmp_path)


def test_cifar_truncated_pickle(tmp_path):
    folder, _ = make_cifar(tmp_path)
    path = folder / "test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=rf"{path}: not a CIFAR-10 python"):
        data.load("cifar10", root=tmp_path)


def test_cifar_wrong_shape(tmp_path):
    folder, _ = make_cifar(tmp_path, data_shape=(3, 1024))
    with pytest.raises(
        DataError, match=rf"{folder / 'test_batch'}: 'data' must be uint8 of"
    ):
        data.load("cifar10", root=tmp_path)


class _Sneaky:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar_pickle_with_code_is_refused(tmp_path):
    folder, _ = make_cifar(tmp_path)
    payload = {"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": _Sneaky()}
    (folder / "test_batch").write_bytes(pickle.dumps(payload))
    with pytest.raises(
        DataError, match=r"test_batch: .*refusing to load posix\.getcwd"
    ):
        data.load("cifar10", root=tmp_path)


def test_cifar_bad_meta(tmp_path):
    folder, _ = make_cifar(tmp_path)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a"]}))
    with pytest.raises(DataError, match=r"batches\.meta: expected a list of 10"):
        data.load("cifar10", root=tmp_path)


# --- SVHN ----------------------------------------------------------------------


def test_svhn_loads(tmp_path):
    _, x, y = make_svhn(tmp_path, "test")
    ds = data.load("svhn", "test", root=tmp_path)
    xs, ys = ds.as_tensors()
    assert xs.shape == (5, 3, 32, 32)
    expected = torch.from_numpy(x[..., 0].transpose(2, 0, 1).astype(np.float32) / 255)
    assert torch.allclose(xs[0], expected)
    assert ys.tolist() == [int(v) % 10 for v in y[:, 0]]  # label 10 means digit 0


def test_svhn_missing_file(tmp_path):
    make_svhn(tmp_path, "test")
    with pytest.raises(DataError, match=r"train_32x32\.mat: file not found"):
        data.load("svhn", "train", root=tmp_path)


def test_svhn_garbage_and_truncated(tmp_path):
    path, _, _ = make_svhn(tmp_path, "test", n=50)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match=rf"{path}: not a readable MATLAB 5 file"):
        data.load("svhn", root=tmp_path)
    path.write_bytes(b"hello")
    with pytest.raises(DataError, match=rf"{path}: not a MATLAB 5 file"):
        data.load("svhn", root=tmp_path)


def test_svhn_element_type_flip_is_an_error_not_a_crash(tmp_path):
    """The damage that made scipy.io.loadmat segfault: the second byte of the
    X data element's type field (found by the damaged-file tests)."""
    path, _, _ = make_svhn(tmp_path, "test", n=4)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"X", 128) + 3  # after the small 'X' name element: data tag
    raw[at + 1] ^= 0x02
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=rf"{path}: not a readable MATLAB 5 file "
                                        r"\(unknown data type"):
        data.load("svhn", root=tmp_path)


def test_svhn_loads_as_torchvisions_loader_does(tmp_path):
    from torchvision.datasets import SVHN

    class Unchecked(SVHN):  # the files' checksums are the official ones
        split_list: ClassVar = {
            k: [u, n, None] for k, (u, n, _) in SVHN.split_list.items()
        }

    make_svhn(tmp_path, "test", n=7)
    ours = data.load("svhn", "test", root=tmp_path)
    theirs = Unchecked(str(tmp_path), split="test", download=False)
    assert np.array_equal(ours.images.numpy(), theirs.data)
    assert ours.labels.tolist() == list(theirs.labels)


@pytest.mark.parametrize("compress", [False, True])
def test_matfile_reader_agrees_with_scipy(tmp_path, compress):
    from explorer.core.data import matfile

    rng = np.random.default_rng(5)
    arrays = {
        "X": rng.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8),
        "y": rng.integers(1, 11, (6, 1)).astype(np.float64),
        "a16": rng.integers(-900, 900, (3, 4, 5)).astype(np.int16),
        "f": rng.random((2, 7)).astype(np.float32),
        "row": np.arange(9, dtype=np.int64),
    }
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {**arrays, "note": "text is skipped"},
                     do_compression=compress)
    ours = matfile.load_arrays(path, tuple(arrays))
    theirs = scipy.io.loadmat(path)
    for name in arrays:
        assert ours[name].dtype == theirs[name].dtype, name
        assert np.array_equal(ours[name], theirs[name]), name
    with pytest.raises(DataError, match=r"variable 'note' is a MATLAB class 4"):
        matfile.load_arrays(path, ("note",))
    with pytest.raises(DataError, match=r"no variable 'Z'"):
        matfile.load_arrays(path, ("Z",))


def test_svhn_wrong_image_shape(tmp_path):
    path, _, _ = make_svhn(tmp_path, "test", x=np.zeros((28, 28, 1, 5), np.uint8))
    with pytest.raises(DataError, match=rf"{path}: X must be uint8 images of 32×32×3"):
        data.load("svhn", root=tmp_path)
