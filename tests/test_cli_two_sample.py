"""`explorer two-sample`: the result line, the table and bad flags."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main

TINY = ["--n-per-sample", "8", "--trials", "2", "--epochs", "2", "--steps", "2",
        "--permutations", "20"]


def test_two_sample_json_ends_with_the_rates(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, "two-sample", "--data", "fashion-mnist-mini",
                 *TINY, "--json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line["type"] == "progress" for line in lines)
    r = lines[-1]
    assert r["type"] == "result"
    for key in ("type1", "power", "power_attacked", "power_defended"):
        assert r[key] in (0.0, 0.5, 1.0)
    assert r["pair"] == "tops-shirts"
    assert (r["trials"], r["n_per_sample"], r["split"]) == (2, 8, "train")
    assert set(r["tests"]) == {"MMD-G", "MMD-D", "MMD-RoD", "ensemble"}
    assert main(["--workspace", ws, "runs", "list", "--json"]) == 0
    run = json.loads(capsys.readouterr().out.splitlines()[-1])["runs"][0]
    assert (run["kind"], run["status"]) == ("two-sample", "finished")


def test_two_sample_prints_a_table(capsys, tmp_path):
    code = main(["--workspace", str(tmp_path / "ws"), "two-sample", *TINY,
                 "--trials", "1", "--pair", "same"])
    assert code == 0
    out = capsys.readouterr().out
    assert "pair same" in out
    assert "MMD-RoD" in out
    assert "type-I" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--alpha", "0"], "--alpha: alpha must be in (0, 1), got 0"),
    (["--alpha", "2"], "--alpha: alpha must be in [0, 1], got 2"),
    (["--n-per-sample", "1"], "--n-per-sample: n_per_sample must be in [2, 1000]"),
    (["--eps", "-0.1"], "--eps: eps must be in [0, 1], got -0.1"),
    (["--pair", "cats"], "--pair: pair must be one of tops-shirts"),
    (["--trials", "two"], "--trials: trials must be an integer, got 'two'"),
    (["--n-per-sample", "500", "--split", "test"], "n_per_sample 500 is too large"),
])
def test_bad_values_are_one_line_naming_the_flag(capsys, tmp_path, argv, message):
    code = main(["--workspace", str(tmp_path / "ws"), "two-sample", *argv])
    assert code in (1, 2)  # a bad value is a usage error (2), too few images 1
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
