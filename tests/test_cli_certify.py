"""`explorer certify`: the JSON shape, the radii per image, bad flags."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main


def test_certify_json_lines_and_result(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, "certify", "--model", "fmnist-cnn-standard",
                 "--data", "fashion-mnist-mini", "--sigma", "0.1", "--samples0",
                 "10", "--samples", "50", "--alpha", "0.01", "--n", "4",
                 "--radii", "0,0.1,0.2", "--batch", "25", "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all("type" in line for line in lines)
    assert any(line["type"] == "progress" for line in lines)
    r = lines[-1]
    assert r["type"] == "result"
    assert len(r["radii"]) == 4
    assert all(x is None or x > 0 for x in r["radii"])
    assert set(r["certified_acc"]) == {"0.0", "0.1", "0.2"}
    certified = [x for x in r["radii"] if x is not None]
    assert r["certified_acc"]["0.0"] == pytest.approx(len(certified) / 4)
    assert r["certified_acc"]["0.1"] == pytest.approx(
        sum(x >= 0.1 for x in certified) / 4)
    assert (r["sigma"], r["samples0"], r["samples"], r["n"]) == (0.1, 10, 50, 4)
    assert main(["--workspace", ws, "runs", "list", "--json"]) == 0
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"][0]
    assert (run["kind"], run["status"]) == ("certify", "finished")


@pytest.mark.parametrize(("flags", "needle"), [
    (["--sigma", "0"], "--sigma: sigma must be positive"),
    (["--sigma", "-0.5"], "--sigma"),
    (["--alpha", "1"], "--alpha: alpha must be in (0, 1)"),
    (["--alpha", "0"], "--alpha"),
    (["--samples", "0"], "--samples: samples must be in"),
    (["--samples0", "0"], "--samples0"),
    (["--n", "0"], "--n"),
    (["--batch", "x"], "--batch"),
    (["--radii", "0,-1"], "--radii"),
])
def test_bad_values_are_one_line_naming_the_flag(capsys, tmp_path, flags, needle):
    code = main(["--workspace", str(tmp_path / "ws"), "certify", "--model",
                 "fmnist-cnn-standard", *flags])
    err = capsys.readouterr().err
    assert code == 2  # a bad flag value is a usage error, as for every command
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert needle in err
    assert "Traceback" not in err


def test_unknown_model_is_a_runtime_error(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "certify", "--model",
                 "no-such-model"]) == 1
    assert "no-such-model" in capsys.readouterr().err
