"""`explorer eval --suite ...`: robust accuracy from the command line."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def test_quick_suite_json_and_recorded_run(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "eval", "--model", "fmnist-cnn-pgdat",
                 "--suite", "quick", "--eps", "8/255", "--steps", "5", "--n", "32",
                 "--json"]) == 0
    lines = _lines(capsys)
    result = lines[-1]
    assert result["n"] == 32
    assert list(result["per_attack"]) == ["apgd-ce"]
    assert result["robust_acc"] == result["per_attack"]["apgd-ce"]
    assert 0 <= result["robust_acc"] <= result["clean_acc"] <= 1
    assert result["eps"] == {"linf": pytest.approx(8 / 255)}
    assert result["attacked"]["apgd-ce"] == round(32 * result["clean_acc"])
    assert "robust" not in result  # per-sample mask stays out of the line
    assert any(e.get("type") == "metric" and e["name"] == "apgd-ce"
               for e in lines[:-1])
    assert main(["--workspace", ws, "runs", "list", "--json"]) == 0
    run = _lines(capsys)[-1]["runs"][0]
    assert run["id"] == result["run_id"]
    assert run["status"] == "finished"
    assert run["summary"]["robust_acc"] == pytest.approx(result["robust_acc"])


def test_several_models_give_one_object_each(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval",
                 "--model", "fmnist-cnn-standard", "--model", "fmnist-cnn-pgdat",
                 "--suite", "quick", "--steps", "5", "--n", "32", "--json"]) == 0
    result = _lines(capsys)[-1]
    standard, robust = result["models"]
    assert [standard["model"], robust["model"]] == ["fmnist-cnn-standard",
                                                    "fmnist-cnn-pgdat"]
    assert standard["run_id"] == robust["run_id"] == result["run_id"]  # one run
    assert standard["robust_acc"] <= robust["robust_acc"]
    from explorer.store import Workspace

    with Workspace.open(tmp_path / "ws") as ws:
        run = ws.get(result["run_id"])
    assert sorted(run.config["models"]) == ["fmnist-cnn-pgdat", "fmnist-cnn-standard"]
    assert run.status == "finished"


def test_multi_suite_reports_union_and_average(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-pgdat", "--suite", "multi", "--steps", "2",
                 "--n-targets", "1", "--queries", "4", "--eps-l1", "6", "--n", "8",
                 "--json"]) == 0
    result = _lines(capsys)[-1]
    assert result["eps"] == pytest.approx({"linf": 0.1, "l2": 1.5, "l1": 6.0})
    assert result["robust_acc"] == result["union_acc"]
    assert result["union_acc"] <= min(result["per_threat"].values())
    assert result["avg_acc"] == pytest.approx(sum(result["per_threat"].values()) / 3)
    assert list(result["per_attack"])[:3] == ["linf:apgd-ce", "linf:apgd-t",
                                              "linf:square"]


def test_plain_output_names_each_stage(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--suite", "quick", "--steps", "3",
                 "--n", "16"]) == 0
    out = capsys.readouterr().out
    assert "fmnist-cnn-standard: clean" in out
    assert "robust" in out
    assert "apgd-ce" in out


@pytest.mark.slow
def test_report_is_the_evaluate_pages_report(capsys, tmp_path):
    """The same job and the same report as the page: results, curves, masking
    verdicts and example images, for both models."""
    out = tmp_path / "out.html"
    assert main(["--workspace", str(tmp_path / "ws"), "eval",
                 "--model", "fmnist-cnn-standard", "--model", "fmnist-cnn-pgdat",
                 "--suite", "quick", "--steps", "2", "--n", "16", "--report",
                 str(out), "--json"]) == 0
    result = _lines(capsys)[-1]
    for entry in result["models"]:
        assert len(entry["sweep"]["eps"]) >= 2  # the accuracy-vs-eps curve
        assert entry["checks"]  # the masking verdicts
    html = out.read_text()
    assert html.count("<svg") >= 1
    assert "Gradient-masking checks" in html
    assert html.count("✔ pass") + html.count("⚠ warning") >= 2  # a verdict each
    assert html.count("data:image/png;base64,") >= 2 * 8  # examples, both models
    for name in ("fmnist-cnn-standard", "fmnist-cnn-pgdat"):
        assert name in html


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--eps", "0.1"], "--eps needs --suite"),
        (["--suite", "huge"], "invalid choice: 'huge'"),
        (["--suite", "quick", "--eps", "2"], "eps must be in [0, 1]"),
        (["--suite", "quick", "--eps", "a/b"], "not a number: 'a/b'"),
        (["--suite", "quick", "--steps", "0"], "steps must be at least 1"),
        (["--suite", "quick", "--n", "0"], "--n must be at least 1"),
    ],
)
def test_bad_suite_flags_are_one_line_errors(capsys, tmp_path, argv,
                                             needle):
    code = main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", *argv])
    err = capsys.readouterr().err
    assert code == 2  # usage errors
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert needle in err


def test_masking_checks_from_the_command_line_are_the_pages(capsys, tmp_path):
    """--masking-checks without --suite brings the quick suite (it used to be
    ignored), and its verdicts are those of the checks the Evaluate page runs
    on the same images."""
    from explorer.core import data, models
    from explorer.core.analysis.masking import masking_checks
    from explorer.core.jobs import run_to_end

    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--n", "16", "--masking-checks",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["suite"] == "quick"
    assert result["check_n"] == 16
    got = {c["key"]: c["passed"] for c in result["checks"]}
    assert "iterative-vs-single-step" in got
    x, y = data.load("fashion-mnist-mini", "test").as_tensors(0, 16)
    model = models.load_builtin("fmnist-cnn-standard")
    done = run_to_end(masking_checks(model, x, y, 0.1, "linf", seed=0))
    expected = {c.as_dict()["key"]: c.as_dict()["passed"] for c in done["checks"]}
    assert got == expected


def test_the_old_checks_spelling_still_works(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--n", "8", "--suite", "quick", "--steps",
                 "2", "--checks", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["checks"]
