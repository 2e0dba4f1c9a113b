"""`explorer denoise --classifier NAME`: the denoiser as a classifier's
defense, its five accuracies, and the classifiers it refuses."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.cli import main
from explorer.core import data, denoise, models
from explorer.core.jobs import run_to_end
from explorer.store import Workspace

KEYS = ("acc_clean", "acc_noisy", "acc_denoised", "acc_obsatk", "acc_adaptive")
N = 8


@pytest.fixture
def tiny_file(tmp_path):
    torch.manual_seed(0)
    return str(denoise.save(denoise.create("dncnn", depth=3, width=4),
                            tmp_path / "tiny.safetensors"))


def _run(tmp_path, tiny_file, *argv):
    return main(["--workspace", str(tmp_path / "ws"), "denoise", "--model",
                 tiny_file, "--n", str(N), "--steps", "2", "--rho", "0.8", *argv])


def test_classifier_json_has_the_five_accuracies(capsys, tmp_path, tiny_file):
    assert _run(tmp_path, tiny_file, "--classifier", "fmnist-cnn-standard",
                "--json") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n"] == N
    assert out["classifier"] == "fmnist-cnn-standard"
    for key in KEYS:
        assert 0 <= out[key] <= 1
    assert out["acc_adaptive"] <= out["acc_denoised"]
    assert "psnr_denoised" not in out
    # the core job's own figures on the same images and seed
    expected = run_to_end(denoise.classifier_accuracy(
        models.load_builtin("fmnist-cnn-standard"), denoise.load(tiny_file),
        data.load("fashion-mnist-mini", "test"), rho=0.8, steps=2, n=N))
    assert {k: out[k] for k in KEYS} == {k: expected[k] for k in KEYS}
    with Workspace.open(str(tmp_path / "ws")) as ws:
        run = ws.get(out["run_id"])
        assert (run.kind, run.status) == ("denoise", "finished")
        assert run.config["classifier"] == "fmnist-cnn-standard"


def test_classifier_from_a_file_and_the_text_line(capsys, tmp_path, tiny_file):
    path = tmp_path / "clf.safetensors"
    models.save(models.create("mlp", hidden=8, depth=1), path)
    assert _run(tmp_path, tiny_file, "--classifier", str(path)) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    for word in ("clean", "noisy", "denoised", "after ObsAtk",
                 "after adaptive attack"):
        assert f"{word} " in line
    assert f"on {N} images" in line


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: "no-such-model", "--classifier: unknown model "
                                "'no-such-model': not a built-in model"),
    (lambda d: str(d / "missing.safetensors"), "missing.safetensors: no such file"),
    (lambda d: _weights_only(d), "pass --classifier-arch"),
    (lambda d: _wide(d), "the classifier does not fit the data: model '.*wide"
                         r".safetensors' expects 3×32×32 inputs"),
    (lambda d: "dncnn-fmnist-standard", "unknown model 'dncnn-fmnist-standard'"),
])
def test_bad_classifiers_exit_1_with_one_line(capsys, tmp_path, tiny_file, make,
                                              message):
    import re

    assert _run(tmp_path, tiny_file, "--classifier", make(tmp_path)) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    assert re.search(message, err), err


def _weights_only(folder):
    path = folder / "weights.pt"
    torch.save(models.create("mlp", hidden=8, depth=1).state_dict(), path)
    return str(path)


def _wide(folder):
    path = folder / "wide.safetensors"
    models.save(models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1), path)
    return str(path)


def test_classifier_with_attack_or_arch_alone_is_a_usage_error(capsys, tmp_path,
                                                               tiny_file):
    assert _run(tmp_path, tiny_file, "--classifier", "fmnist-cnn-standard",
                "--attack", "obsatk") == 2
    assert "--attack goes with the PSNR score" in capsys.readouterr().err
    assert _run(tmp_path, tiny_file, "--classifier-arch", "mlp") == 2
    assert "--classifier-arch goes with --classifier" in capsys.readouterr().err
