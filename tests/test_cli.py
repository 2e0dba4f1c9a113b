"""The command line: lists, eval, errors as one line, the screenshot command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _json_last_line(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_data_list_json(capsys):
    assert main(["data", "list", "--json"]) == 0
    rows = _json_last_line(capsys)["data"]
    names = {r["name"] for r in rows}
    assert {"fashion-mnist-mini", "mnist", "cifar10", "svhn", "moons"} <= names


def test_models_list_json(capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = _json_last_line(capsys)["models"]
    builtin = [r for r in rows if r["kind"] == "built-in"]
    from explorer.core import models

    assert [r["name"] for r in builtin] == models.builtin_names()
    assert builtin[0]["name"] == "fmnist-cnn-standard"
    assert builtin[0]["method"] == "standard"
    archs = {r["name"] for r in rows if r["kind"] == "architecture"}
    assert {"mlp", "small-cnn", "lenet5", "preact-resnet18", "wide-resnet"} <= archs


def test_eval_json_records_a_run(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, "eval", "--model", "fmnist-cnn-standard",
                 "--data", "fashion-mnist-mini", "--n", "200", "--json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    results = json.loads(lines[-1])
    assert results["n"] == 200
    assert 0.8 <= results["clean_acc"] <= 1.0
    events = [json.loads(x) for x in lines[:-1]]
    assert any(e["event"] == "progress" for e in events)
    assert main(["--workspace", ws, "runs", "list", "--json"]) == 0
    runs = _json_last_line(capsys)["runs"]
    assert runs[0]["id"] == results["run_id"]
    assert runs[0]["status"] == "finished"
    assert runs[0]["summary"]["clean_acc"] == pytest.approx(results["clean_acc"])


def test_eval_model_file_and_plain_output(capsys, tmp_path):
    from explorer.core import models

    path = tmp_path / "copy.safetensors"
    models.save(models.load_builtin("fmnist-cnn-standard"), path)
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model", str(path),
                 "--n", "50"]) == 0
    assert "clean accuracy:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["eval", "--model", "missing.safetensors"], "missing.safetensors"),
        (["eval", "--model", "fmnist-cnn-standard", "--data", "nope"], "nope"),
        (["eval", "--model", "fmnist-cnn-standard", "--data", "cifar10"], "folder"),
        (["eval", "--model", "fmnist-cnn-standard", "--data", "moons"], "moons"),
        (["eval", "--model", "fmnist-cnn-standard", "--n", "0"], "--n"),
        (["--device", "tpu", "eval", "--model", "fmnist-cnn-standard"], "device"),
    ],
)
def test_errors_are_one_line_naming_the_problem(capsys, tmp_path, argv, needle):
    code = main(["--workspace", str(tmp_path / "ws"), *argv])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err


def test_bad_file_as_model(capsys, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage")
    code = main(["--workspace", str(tmp_path / "ws"), "eval", "--model", str(bad),
                 "--arch", "small-cnn"])
    err = capsys.readouterr().err
    assert code == 1
    assert "model.pt" in err


def _env(tmp_path):
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", EXPLORER_HOME=str(tmp_path / "ws"),
               EXPLORER_CONFIG_DIR=str(tmp_path / "cfg"))
    return env


def test_python_dash_m_and_debug_flag(tmp_path):
    out = subprocess.run([sys.executable, "-m", "explorer", "data", "list"],
                         capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT)
    assert out.returncode == 0
    assert "fashion-mnist-mini" in out.stdout
    out = subprocess.run([sys.executable, "-m", "explorer", "--debug", "eval",
                          "--model", "nope"],
                         capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT)
    assert out.returncode != 0
    assert "Traceback" in out.stderr


@pytest.mark.slow
def test_gui_screenshot_of_data_panel(tmp_path):
    png = tmp_path / "data.png"
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "gui", "--screenshot", str(png),
         "--panel", "data"],
        capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT, timeout=240,
    )
    assert out.returncode == 0, out.stderr
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert (image.width(), image.height()) == (1280, 800)
    # not blank: many distinct grey levels in the sample grid and plots
    colours = {image.pixel(x, y) for x in range(0, 1280, 7) for y in range(0, 800, 7)}
    assert len(colours) > 50


def test_gui_screenshot_unknown_panel(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "gui", "--screenshot",
         str(tmp_path / "x.png"), "--panel", "nope"],
        capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT, timeout=120,
    )
    assert out.returncode == 2
    assert "unknown panel 'nope'" in out.stderr


def test_image_folder_skips_and_names_unreadable_images(capsys, tmp_path):
    """Notes are ignored; a broken picture is skipped, named on stderr and
    listed as skipped_files in the JSON result."""
    from PIL import Image

    folder = tmp_path / "pics"
    for k in range(10):  # the built-in model's ten classes
        (folder / f"class{k}").mkdir(parents=True)
        Image.new("L", (28, 28), 20 * k).save(folder / f"class{k}" / "0.png")
    (folder / "class0" / "notes.txt").write_text("scanned in 2024")
    broken = folder / "class9" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    code = main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--data", "image-folder", "--root",
                 str(folder), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out.strip().splitlines()[-1])
    assert results["n"] == 10
    assert results["skipped_files"] == [str(broken)]
    (warning,) = [ln for ln in captured.err.splitlines() if ln.startswith("warning")]
    assert f"1 unreadable image skipped: {broken}: " in warning


def test_builtin_data_results_have_no_skipped_files(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--n", "10", "--json"]) == 0
    assert "skipped_files" not in _json_last_line(capsys)
