"""`explorer denoise` and `explorer train-denoiser`: JSON keys, runs, errors."""

from __future__ import annotations

import json
import re

import pytest
import torch

from explorer.cli import main
from explorer.core import denoise, models
from explorer.store import Workspace


@pytest.fixture
def tiny_file(tmp_path):
    torch.manual_seed(0)
    return str(denoise.save(denoise.create("dncnn", depth=3, width=4),
                            tmp_path / "tiny.safetensors"))


def _last(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_denoise_with_obsatk_json(capsys, tmp_path, tiny_file):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, "denoise", "--model", tiny_file, "--sigma",
                 "0.1", "--attack", "obsatk", "--rho", "0.44", "--steps", "3",
                 "--n", "8", "--json"])
    assert code == 0
    out = _last(capsys)
    assert set(out) >= {"psnr_noisy", "psnr_denoised", "ssim_denoised",
                        "psnr_attacked", "ssim_attacked", "max_abs_mean", "max_l2"}
    assert out["n"] == 8
    assert out["max_abs_mean"] < 1e-6
    assert out["max_l2"] <= 0.44 + 1e-5
    assert out["psnr_attacked"] < out["psnr_denoised"]
    assert out["psnr_noisy"] == pytest.approx(20.0, abs=0.5)
    with Workspace.open(ws) as store:
        run = store.get(out["run_id"])
        assert (run.kind, run.status) == ("denoise", "finished")


def test_denoise_without_attack_has_no_attack_keys(capsys, tiny_file):
    assert main(["denoise", "--model", tiny_file, "--n", "4", "--json"]) == 0
    out = _last(capsys)
    assert "psnr_attacked" not in out
    assert "psnr_denoised" in out


def test_train_denoiser_json(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, "train-denoiser", "--method", "hat",
                 "--sigma", "0.1", "--epochs", "1", "--limit-train", "64",
                 "--depth", "3", "--width", "4",
                 "--batch-size", "32", "--eval-n", "8", "--eval-steps", "2",
                 "--json"])
    assert code == 0
    out = _last(capsys)
    assert out["epochs"] == 1
    assert out["method"] == "hat"
    assert denoise.load(out["best"]).meta.training["method"] == "hat"


@pytest.mark.parametrize(("argv", "message"), [
    (["--sigma", "-0.1"], r"sigma must be in \[0, 1\] for gaussian noise, got -0.1"),
    (["--attack", "obsatk", "--rho", "-1"], "rho must be a finite number >= 0"),
    (["--attack", "pgd"], "attack must be one of none, obsatk, random"),
    (["--attack", "obsatk", "--steps", "0"], "steps must be at least 1, got 0"),
])
def test_denoise_bad_inputs(capsys, tiny_file, argv, message):
    code = main(["denoise", "--model", tiny_file, "--n", "2", *argv])
    err = capsys.readouterr().err
    assert code == 2  # a bad value is a usage error
    assert err.startswith("error: ")
    assert re.search(message, err)


def test_classifier_given_as_denoiser(capsys, tmp_path):
    path = models.save(models.create("mlp", hidden=8, depth=1),
                       tmp_path / "clf.safetensors")
    assert main(["denoise", "--model", str(path), "--n", "2"]) == 1
    assert "is a classifier, not a denoiser" in capsys.readouterr().err


def test_denoise_budget_defaults_to_rms_4_over_255_for_the_image_size(capsys,
                                                                     tmp_path):
    model = denoise.create("dncnn", depth=3, width=4, in_shape=(1, 40, 40))
    path = denoise.save(model, tmp_path / "n.safetensors")
    argv = ["denoise", "--model", str(path), "--data", "natural-patches",
            "--attack", "random", "--n", "4"]
    assert main([*argv, "--json"]) == 0
    out = _last(capsys)
    assert out["rms"] == pytest.approx(4 / 255)
    assert out["rho"] == pytest.approx(4 / 255 * 40)  # sqrt(40·40) pixels
    assert out["max_l2"] == pytest.approx(4 / 255 * 40, rel=1e-4)
    assert main([*argv, "--rms", "8", "--json"]) == 0
    assert _last(capsys)["rho"] == pytest.approx(8 / 255 * 40)
    assert main(argv) == 0
    assert "= RMS 4.00/255" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--rms", "-1"], r"--rms must be a finite number >= 0 \(K/255 per pixel\), "
                      "got -1"),
    (["--rms", "4", "--rho", "0.4"], "give the budget as --rms or as --rho, not both"),
])
def test_denoise_bad_budget(capsys, tiny_file, argv, message):
    code = main(["denoise", "--model", tiny_file, "--n", "2", "--attack",
                 "obsatk", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert re.search(message, err)
