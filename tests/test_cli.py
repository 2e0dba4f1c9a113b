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
    assert any(e["type"] == "progress" for e in events)
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
    ("argv", "needle", "exit_code"),
    [
        (["eval", "--model", "missing.safetensors"], "missing.safetensors", 1),
        (["eval", "--model", "fmnist-cnn-standard", "--data", "nope"], "nope", 1),
        (["eval", "--model", "fmnist-cnn-standard", "--data", "cifar10"], "folder", 1),
        (["eval", "--model", "fmnist-cnn-standard", "--data", "moons"], "moons", 1),
        (["eval", "--model", "fmnist-cnn-standard", "--n", "0"], "--n", 2),
        (["--device", "tpu", "eval", "--model", "fmnist-cnn-standard"], "device", 1),
    ],
)
def test_errors_are_one_line_naming_the_problem(capsys, tmp_path, argv, needle,
                                               exit_code):
    """A bad value is a usage error (2); a file or data set that fails is 1."""
    code = main(["--workspace", str(tmp_path / "ws"), *argv])
    err = capsys.readouterr().err
    assert code == exit_code
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


def test_version_and_lists_of_attacks_and_defenses(capsys):
    from explorer import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"explorer {__version__}"
    assert main(["attacks", "list", "--json"]) == 0
    line = _json_last_line(capsys)
    assert line["type"] == "result"
    pgd = next(a for a in line["attacks"] if a["name"] == "pgd")
    assert {p["name"] for p in pgd["params"]} >= {"eps", "alpha", "steps", "norm"}
    assert main(["defenses", "list", "--json"]) == 0
    names = [d["name"] for d in _json_last_line(capsys)["defenses"]]
    from explorer.core import defenses

    assert names == defenses.names()
    assert main(["defenses", "list"]) == 0
    table = capsys.readouterr().out
    assert "pgd-at" in table
    assert "PGD adversarial training" in table


def test_global_flags_go_before_or_after_the_command(capsys, tmp_path):
    before = str(tmp_path / "before")
    after = str(tmp_path / "after")
    assert main(["--workspace", before, "eval", "--model", "fmnist-cnn-standard",
                 "--n", "10", "--json"]) == 0
    assert main(["eval", "--model", "fmnist-cnn-standard", "--n", "10", "--json",
                 "--workspace", after, "--device", "cpu"]) == 0
    capsys.readouterr()
    from explorer.store import Workspace

    for folder in (before, after):
        with Workspace.open(folder) as ws:
            assert len(ws.runs(kind="eval")) == 1


@pytest.mark.parametrize(("argv", "code"), [
    (["eval", "--model", "fmnist-cnn-standard", "--bogus"], 2),  # argparse
    (["eval", "--model", "fmnist-cnn-standard", "--n", "0"], 2),  # a flag's value
    (["nosuchcommand"], 2),
    (["train", "--defense", "pgd-at", "--eps", "2"], 2),
    (["eval", "--model", "missing.safetensors"], 1),  # a file that is not there
    (["eval", "--model", "fmnist-cnn-standard", "--data", "cifar10"], 1),
])
def test_usage_errors_exit_2_runtime_errors_1(capsys, tmp_path, argv, code):
    assert main(["--workspace", str(tmp_path / "ws"), *argv]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1


def test_every_json_line_has_a_type_and_the_last_is_the_result(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    commands = [
        ["eval", "--model", "fmnist-cnn-standard", "--n", "20"],
        ["attack", "--model", "fmnist-cnn-standard", "--attack", "fgsm", "--n", "8"],
        ["boundary", "--model", "fmnist-cnn-standard", "--grid", "3", "--steps", "1"],
        ["runs", "list"],
        ["data", "list"],
    ]
    for argv in commands:
        assert main(["--workspace", ws, *argv, "--json"]) == 0, argv
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert lines, argv
        assert all("type" in line for line in lines), argv
        assert lines[-1]["type"] == "result", argv
        assert all(line["type"] != "result" for line in lines[:-1]), argv


def test_gui_panel_opens_that_page(tmp_path, monkeypatch):
    from explorer.gui import app as gui_app

    opened = {}

    def fake_run(**kwargs):
        opened.update(kwargs)
        return 0

    monkeypatch.setattr(gui_app, "run", fake_run)
    assert main(["gui", "--panel", "training"]) == 0
    assert opened["panel"] == "training"
    assert opened["screenshot"] is None
    assert main(["gui", "--panel", "nowhere"]) == 2


def test_eval_min_eps_per_image(capsys, tmp_path):
    """--min-eps: each image's minimal l-inf eps, 0 for the misclassified ones,
    the numbers of the core search on the same images."""
    import json

    import numpy as np

    from explorer.core import data, models
    from explorer.core.analysis.distance import minimal_distance
    from explorer.core.jobs import run_to_end

    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-pgdat", "--n", "12", "--min-eps", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["min_eps_n"] == 12
    assert result["min_eps_norm"] == "linf"
    found = run_to_end(minimal_distance(models.load_builtin("fmnist-cnn-pgdat"),
                                        data.load("fashion-mnist-mini", "test"),
                                        n=12, norm="linf"))
    wrong = ~found["correct"]
    assert all(result["min_eps"][i] == 0.0 for i in np.flatnonzero(wrong))
    broken = found["correct"] & found["broken"]
    assert broken.any()
    assert np.allclose([result["min_eps"][i] for i in np.flatnonzero(broken)],
                       found["distances"][broken])
    assert all(0 < result["min_eps"][i] <= 1 for i in np.flatnonzero(broken))


def test_eval_min_eps_with_a_suite_is_a_usage_error(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--suite", "quick", "--min-eps"]) == 2
    assert "--min-eps goes with the clean evaluation" in capsys.readouterr().err


def test_eval_corruptions(capsys, tmp_path):
    """--corruptions: noise and rotation accuracy, and the adversarial
    confusion matrix of PGD-20 at --eps (rows: true class, summing to its
    images)."""
    import json

    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-pgdat", "--n", "40", "--corruptions", "--eps", "0.05",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    noise = result["corruptions"]
    assert noise["sigmas"][0] == 0.0
    assert noise["noise_acc"][0] == result["clean_acc"]  # sigma 0 is clean
    assert noise["rotation_acc"][-1] < noise["rotation_acc"][0]  # 45° hurts
    adv = result["adversarial_confusion"]
    assert adv["params"]["eps"] == 0.05
    assert sum(map(sum, adv["confusion"])) == 40
    clean_right = sum(adv["clean_confusion"][i][i] for i in range(10))
    adv_right = sum(adv["confusion"][i][i] for i in range(10))
    assert adv_right <= clean_right
    assert adv["robust_acc"] <= result["clean_acc"]


def test_eval_corruptions_eps_above_one_is_a_question(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--corruptions", "--eps", "8"]) == 2
    assert "did you mean 8/255 = 0.0314?" in capsys.readouterr().err
