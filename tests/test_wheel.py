"""A wheel works on its own: the built-in data set and models travel inside
the package, found through importlib.resources, from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A clean copy: setuptools' build/ keeps files a later build no longer has.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        "docs", "out", "tmp"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300, check=False)
    if build.returncode != 0:
        pytest.fail(f"pip wheel failed: {build.stderr[-2000:]}")
    (found,) = out.glob("robustness_explorer-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_holds_the_data_set_and_the_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "explorer/resources/fashion-mnist-mini.npz" in names
    shipped = {Path(n).name for n in names
               if n.startswith("explorer/resources/models/")}
    assert {"fmnist-cnn-standard.safetensors", "fmnist-cnn-pgdat.safetensors",
            "fmnist-cnn-trades.safetensors", "dncnn-fmnist-standard.safetensors",
            "dncnn-fmnist-hat.safetensors", "fmnist-cnn-gaussian.safetensors",
            "fmnist-cnn-rce.safetensors", "dncnn-natural-standard.safetensors",
            "dncnn-natural-hat.safetensors"} <= shipped
    assert {f"explorer/resources/icons/explorer-{s}.png" for s in (16, 32, 48, 128, 256)
            } | {"explorer/resources/icons/explorer.svg"} <= names  # the window icon
    assert not any(n.startswith(("tests/", "scripts/", "bench/")) for n in names)


@pytest.mark.slow
def test_the_installed_wheel_evaluates_a_builtin_from_another_folder(wheel, tmp_path):
    """pip installs the wheel (into a target folder: a fresh environment would
    need its own torch, and nothing is downloaded at test time); its
    `explorer` command then evaluates a built-in model from another folder."""
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
         "--quiet", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    command = site / "bin" / "explorer"
    assert command.exists()  # the console script the wheel declares
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site),
           "EXPLORER_HOME": str(tmp_path / "ws"),
           "EXPLORER_CONFIG_DIR": str(tmp_path / "cfg")}
    env.pop("EXPLORER_RESOURCES", None)
    where = subprocess.run(
        [sys.executable, "-c", "import explorer; print(explorer.__file__)"],
        capture_output=True, text=True, cwd=elsewhere, env=env, check=True)
    assert where.stdout.strip().startswith(str(site))  # not the source tree
    run = subprocess.run(
        [str(command), "eval", "--model", "fmnist-cnn-standard", "--n", "100",
         "--json"],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300,
        check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1])["clean_acc"] > 0.8
