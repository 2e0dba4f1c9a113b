"""Damaged and foreign files, every format the app reads (property-based).

Each test starts from a valid file written here, damages it (tests/damage.py)
and loads it through the same entry point the CLI and the GUI use: it loads,
or it fails with the project's one-line error naming the file. The pickle
formats also get files built to run code when unpickled: refused, never run.
"""

from __future__ import annotations

import pickle
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from damage import (
    DAMAGE_SETTINGS,
    SMALL_CNN,
    check_load,
    cifar_folder,
    damaged,
    database_bytes,
    mnist_folder,
    npz_bytes,
    svhn_file,
    valid_bytes,
    write,
)
from hypothesis import given
from hypothesis import strategies as st

from explorer.core import data, models
from explorer.core.analysis.result_files import ResultFileError, load_npz
from explorer.core.data import DataError
from explorer.core.data import images as image_files
from explorer.core.models import ModelError, onnx_format
from explorer.store import Workspace, WorkspaceError

# -- model files ----------------------------------------------------------------
MODEL_FORMATS = {
    "safetensors": ("m.safetensors", {}),
    "pt": ("weights.pt", {"arch": "small-cnn", "arch_params": SMALL_CNN}),
    "pth-wrapped": ("ckpt.pth", {"arch": "small-cnn", "arch_params": SMALL_CNN}),
    "torchscript": ("scripted.pt", {}),
    "pt2": ("program.pt2", {}),
    "onnx": ("graph.onnx", {}),
}
ONNX = onnx_format.available()


@pytest.mark.parametrize("fmt", [
    pytest.param(f, marks=pytest.mark.skipif(
        f == "onnx" and not ONNX, reason="onnx2torch (the [onnx] extra) is absent"))
    for f in sorted(MODEL_FORMATS)])
@DAMAGE_SETTINGS
@given(case=st.data())
def test_damaged_model_files(fmt, case, tmp_path):
    name, kwargs = MODEL_FORMATS[fmt]
    _kind, raw = case.draw(damaged(valid_bytes(fmt)), label="damage")
    path = write(tmp_path / name, raw)
    check_load(fmt, lambda: models.load(path, **kwargs), ModelError, path)


# -- data sets ------------------------------------------------------------------
@DAMAGE_SETTINGS
@given(case=st.data())
def test_damaged_idx_files(case, tmp_path_factory):
    root = tmp_path_factory.mktemp("idx")
    raw = mnist_folder(root)
    name = case.draw(st.sampled_from(["t10k-images-idx3-ubyte",
                                      "t10k-labels-idx1-ubyte"]), label="file")
    path = raw / name
    _kind, damaged_bytes = case.draw(damaged(path.read_bytes()), label="damage")
    write(path, damaged_bytes)
    check_load("idx", lambda: data.load("fashion-mnist", "test", root=root),
               DataError, path)


@DAMAGE_SETTINGS
@given(case=st.data())
def test_damaged_cifar_batches(case, tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    folder = cifar_folder(root)
    path = folder / case.draw(st.sampled_from(["test_batch", "batches.meta"]))
    _kind, raw = case.draw(damaged(path.read_bytes()), label="damage")
    write(path, raw)
    check_load("cifar-pickle", lambda: data.load("cifar10", "test", root=root),
               DataError, path)


@DAMAGE_SETTINGS
@given(case=st.data())
def test_damaged_svhn_mat(case, tmp_path_factory):
    root = tmp_path_factory.mktemp("svhn")
    path = svhn_file(root)
    _kind, raw = case.draw(damaged(path.read_bytes()), label="damage")
    write(path, raw)
    check_load("svhn-mat", lambda: data.load("svhn", "test", root=root),
               DataError, path)


# -- pictures -------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@DAMAGE_SETTINGS
@given(case=st.data())
def test_damaged_pictures(fmt, case, tmp_path):
    _kind, raw = case.draw(damaged(valid_bytes(fmt)), label="damage")
    path = write(tmp_path / f"photo.{fmt}", raw)
    loader = case.draw(st.sampled_from(["header", "read", "folder"]), label="reader")
    if loader == "header":
        check_load(fmt, lambda: image_files.header(path), DataError, path)
    elif loader == "read":
        check_load(fmt, lambda: image_files.read_chw(path, (3, 16, 16)),
                   DataError, path)
    else:  # an image folder skips it and names it, or refuses the folder
        def folder():
            ds = data.load("image-folder", root=tmp_path)
            for error in ds.skipped:
                assert "\n" not in str(error)
                assert str(path) in str(error)
            ds.as_tensors()

        check_load(fmt, folder, DataError, tmp_path)


# -- analysis results -------------------------------------------------------------
@DAMAGE_SETTINGS
@given(case=st.data())
def test_damaged_result_files(case, tmp_path):
    _kind, raw = case.draw(damaged(npz_bytes()), label="damage")
    path = write(tmp_path / "landscape.npz", raw)
    check_load("npz", lambda: load_npz(path), ResultFileError, path)


# -- the workspace database -----------------------------------------------------------
@DAMAGE_SETTINGS
@given(case=st.data())
def test_damaged_workspace_database(case, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ws")
    _kind, raw = case.draw(damaged(database_bytes()), label="damage")
    path = write(folder / "runs.sqlite", raw)

    def use():
        with Workspace.open(folder) as ws:
            ws.runs()
            run = ws.create_run("eval", {"model": "x"})
            ws.finish(run.id, "finished", summary={"clean_acc": 0.5})

    check_load("sqlite", use, WorkspaceError, path)


# -- files built to run code ---------------------------------------------------------
class RunsCode:
    """Unpickling this creates a folder: the proof that code ran."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        import os

        return (os.makedirs, (self.target,))


def test_pickles_that_would_run_code_are_refused_in_every_format(tmp_path):
    proof = tmp_path / "code-ran"
    evil = RunsCode(proof)
    checkpoint = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "x": evil}, checkpoint)
    assert "refused" in check_load(
        "pickle-code", lambda: models.load(checkpoint, arch="lenet5"), ModelError,
        checkpoint)
    cifar = tmp_path / "cifar"
    folder = cifar_folder(cifar)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": evil, "labels": [1]}))
    assert "refused" in check_load(
        "pickle-code", lambda: data.load("cifar10", "test", root=cifar), DataError,
        folder / "test_batch")
    npz = tmp_path / "evil.npz"
    np.savez(npz, kind=np.array("slice"), meta=np.array([evil], dtype=object))
    assert "refused" in check_load("pickle-code", lambda: load_npz(npz),
                                   ResultFileError, npz)
    scripted = tmp_path / "scripted.pt"
    write(scripted, valid_bytes("torchscript"))
    with zipfile.ZipFile(scripted) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    constants = next(n for n in entries if n.endswith("constants.pkl"))
    entries[constants] = pickle.dumps(evil, protocol=2)
    with zipfile.ZipFile(scripted, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    assert "refused" in check_load("pickle-code", lambda: models.load(scripted),
                                   ModelError, scripted)
    assert not proof.exists()


def test_a_sqlite_file_of_another_program_is_named(tmp_path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (name TEXT)")
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(WorkspaceError, match=str(path)):
        Workspace.open(tmp_path)
