"""Damaged files through the command line: exit 1 and one line naming the file.

The formats' parsers are searched exhaustively in tests/core/test_damaged_files.py;
here each format's damaged versions go through the command that reads it.
(Analysis ``.npz`` results are read back only by the GUI: see
tests/gui/test_damaged_files_gui.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from damage import (
    REFUSED,
    TRIED,
    cifar_folder,
    database_bytes,
    fixed_damage,
    mnist_folder,
    svhn_file,
    valid_bytes,
    write,
)

from explorer.cli import main

MODEL_FILES = {
    "safetensors": ("m.safetensors", []),
    "pt": ("weights.pt", ["--arch", "small-cnn"]),
    "pth-wrapped": ("ckpt.pth", ["--arch", "small-cnn"]),
    "torchscript": ("scripted.pt", []),
}


def _fails_naming(capsys, argv: list[str], path: Path, fmt: str) -> None:
    TRIED[f"cli {fmt}"] += 1
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err[0]
    assert str(path) in err[0], err[0]
    assert "Traceback" not in err[0]
    REFUSED[f"cli {fmt}"] += 1


def _eval(tmp_path: Path, *extra: str) -> list[str]:
    return ["--workspace", str(tmp_path / "ws"), "eval", "--n", "4", *extra]


@pytest.mark.parametrize("fmt", sorted(MODEL_FILES))
def test_damaged_model_files_exit_1_naming_the_file(capsys, tmp_path, fmt):
    name, flags = MODEL_FILES[fmt]
    for damage, raw in fixed_damage(valid_bytes(fmt)).items():
        path = write(tmp_path / damage.replace(" ", "-") / name, raw)
        _fails_naming(capsys, _eval(tmp_path, "--model", str(path), *flags), path, fmt)


DATA_FILES = [  # format, data set, the file of a valid folder to damage
    ("idx", "fashion-mnist", lambda r: mnist_folder(r) / "t10k-labels-idx1-ubyte"),
    ("cifar-pickle", "cifar10", lambda r: cifar_folder(r) / "test_batch"),
    ("svhn-mat", "svhn", svhn_file),
]


@pytest.mark.parametrize(("fmt", "name", "make"), DATA_FILES,
                         ids=[c[0] for c in DATA_FILES])
def test_damaged_data_files_exit_1_naming_the_file(capsys, tmp_path, fmt, name, make):
    original = make(tmp_path / "valid").read_bytes()
    for i, raw in enumerate(fixed_damage(original).values()):
        root = tmp_path / f"damaged{i}"
        path = write(make(root), raw)
        _fails_naming(capsys, _eval(tmp_path, "--model", "fmnist-cnn-standard",
                                    "--data", name, "--root", str(root)), path, fmt)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_folder_of_damaged_pictures_exits_1_naming_them(capsys, tmp_path, fmt):
    folder = tmp_path / "pics"
    for damage, raw in fixed_damage(valid_bytes(fmt)).items():
        write(folder / f"{damage.replace(' ', '-')}.{fmt}", raw)
    first = sorted(folder.iterdir())[0]
    _fails_naming(capsys, _eval(tmp_path, "--model", "fmnist-cnn-standard",
                                "--data", "image-folder", "--root", str(folder)),
                  first, fmt)


def test_a_damaged_workspace_database_exits_1_naming_it(capsys, tmp_path):
    refused = 0
    for damage, raw in fixed_damage(database_bytes()).items():
        workspace = tmp_path / damage.replace(" ", "-")
        path = write(workspace / "runs.sqlite", raw)
        code = main(["--workspace", str(workspace), "runs", "list", "--json"])
        TRIED["cli sqlite"] += 1
        if code == 0:  # SQLite may still read a damaged page it does not use
            capsys.readouterr()
            continue
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1
        assert len(err) == 1, err
        assert str(path) in err[0], err
        refused += 1
        REFUSED["cli sqlite"] += 1
    assert refused >= 2
