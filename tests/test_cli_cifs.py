"""`explorer train --defense cifs`: the CIFS variant built and saved, and the
one-line errors for an architecture without the option and bad values."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.core import models
from explorer.core.models import cifs
from explorer.store import Workspace

BASE = ["train", "--limit-train", "128", "--batch-size", "64", "--eval-n", "32",
        "--eval-steps", "1", "--epochs", "1"]  # fmt: skip
TINY_CNN = ["--arch", "small-cnn", "--width", "4", "--dense", "16"]


def test_cifs_trains_the_variant_of_a_plain_small_cnn(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, *TINY_CNN, "--defense", "cifs",
                 "--steps", "1", "--beta", "1.5", "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["params"]["beta"] == 1.5
    with Workspace.open(ws) as store:
        folder = store.run_dir(last["run_id"])
    best = models.load(folder / "best.safetensors")
    assert best.meta.arch_params["cifs"] is True  # built by the defense
    assert len(cifs.blocks(best)) == 1


def test_the_arch_option_alone_builds_a_cifs_model(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, *TINY_CNN, "--cifs", "true",
                 "--cifs-k", "3", "--defense", "standard", "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with Workspace.open(ws) as store:
        folder = store.run_dir(last["run_id"])
    best = models.load(folder / "best.safetensors")
    assert cifs.blocks(best)[0].k == 3


def test_an_architecture_without_the_option_is_one_line(capsys, tmp_path):
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--arch", "mlp",
                 "--hidden", "8", "--defense", "cifs"])
    assert code == 2  # a bad parameter value: usage error, as for the others
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'mlp' has none" in err
    assert "small-cnn, preact-resnet18, wide-resnet" in err


@pytest.mark.parametrize(("flags", "message"), [
    (["--defense", "cifs", "--beta", "-1"], "--beta: beta must be"),
    (["--defense", "cifs", "--cifs-k", "0"], "--cifs-k: cifs_k must be"),
    (["--defense", "standard", "--cifs", "maybe"], "--cifs: cifs must be true or"),
])  # fmt: skip
def test_bad_values_give_one_line(capsys, tmp_path, flags, message):
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, *TINY_CNN, *flags])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
