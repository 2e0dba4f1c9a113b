"""`explorer boundary` and `explorer landscape`: results, files, runs, errors."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.core.analysis.result_files import load_npz


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_boundary_json_saves_a_reloadable_file(capsys, tmp_path):
    ws, out = str(tmp_path / "ws"), tmp_path / "b.npz"
    code = main(["--workspace", ws, "boundary", "--model", "fmnist-cnn-standard",
                 "--data", "fashion-mnist-mini", "--index", "0", "--directions",
                 "adv,random", "--grid", "5", "--steps", "2", "--out", str(out),
                 "--json"])
    assert code == 0
    r = last_json(capsys)
    assert r["grid"] == 5
    assert r["out"] == str(out)
    assert r["time"] > 0
    assert len(r["label_share"]) == 1
    saved = load_npz(out, kind="slice")
    assert saved["pred"].shape == (1, 5, 5)
    assert saved["meta"]["index"] == 0
    assert load_npz(r["path"])["kind"] == "slice"  # the run folder's copy
    assert main(["--workspace", ws, "runs", "list", "--json"]) == 0
    run = last_json(capsys)["runs"][0]
    assert (run["kind"], run["status"]) == ("boundary", "finished")


@pytest.mark.parametrize("space", ["weights", "input"])
def test_landscape_json(capsys, tmp_path, space):
    out = tmp_path / "l.npz"
    code = main(["--workspace", str(tmp_path / "ws"), "landscape", "--model",
                 "fmnist-cnn-standard", "--space", space, "--grid", "3", "--n",
                 "20", "--out", str(out), "--json"])
    assert code == 0
    r = last_json(capsys)
    assert r["grid"] == 3
    assert r["loss_min"] <= r["loss_centre"] <= r["loss_max"]
    kind = "weights-2d" if space == "weights" else "input"
    assert load_npz(out, kind=kind)["loss"].shape == (3, 3)


@pytest.mark.parametrize(("argv", "message"), [
    (["landscape", "--space", "foo"], "--space must be one of weights, input"),
    (["boundary", "--index", "5000"], "--index must be in [0, 999]"),
    (["boundary", "--grid", "1"], "--grid must be an integer in [2, 2001], got 1"),
    (["boundary", "--directions", "adv,up"], "unknown direction 'up'"),
    (["boundary", "--out", "x.txt", "--grid", "2", "--steps", "1"],
     "--out must end in .npz"),
])
def test_bad_inputs_are_one_line(capsys, tmp_path, argv, message):
    code = main(["--workspace", str(tmp_path / "ws"), *argv[:1], "--model",
                 "fmnist-cnn-standard", *argv[1:]])
    assert code == 2  # a bad value is a usage error
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
