"""The autoattack suite: AutoAttack's standard version with the authors'
settings, checked against their own implementation (pyautoattack)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from explorer.core import attacks, data, models
from explorer.core.analysis.cascade import run_suite
from explorer.core.analysis.suites import SUITES, suite_plan
from explorer.core.attacks.blackbox import p_schedule
from explorer.core.jobs import run_to_end

STAGES = ["apgd-ce", "apgd-t", "fab-t", "square"]


def first_images(n: int):
    ds = data.load("fashion-mnist-mini", split="test")
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.tensor([int(ds[i][1]) for i in range(n)])
    return x, y


def test_plan_is_autoattacks_standard_version():
    assert "autoattack" in SUITES
    plan = suite_plan("autoattack", 0.1)
    assert list(plan) == ["linf"]
    stages = plan["linf"]
    assert [s.label for s in stages] == STAGES
    assert [s.name for s in stages] == ["apgd-ce", "apgd-dlr", "fab", "square"]
    for stage in stages[:3]:  # 100 iterations, one run per target
        assert stage.params["steps"] == 100
        assert stage.params["restarts"] == 1
        assert (stage.eps, stage.norm) == (0.1, "linf")
    assert stages[1].params["n_target_classes"] == 9
    assert stages[2].params["n_target_classes"] == 9
    square = stages[3].params
    assert (square["queries"], square["p_init"]) == (5000, 0.8)
    assert square["rescale_schedule"] is False
    model = models.load_builtin("fmnist-cnn-standard")
    for stage in stages:  # every setting is one its attack accepts
        atk = attacks.create(stage.name, model, **stage.params)
        assert atk.budget() == ("linf", 0.1)
    # the standard suite stays the fast one without FAB-T
    standard = suite_plan("standard", 0.1)["linf"]
    assert [s.label for s in standard] == ["apgd-ce", "apgd-t", "square"]
    assert standard[0].params["steps"] == 20


def test_square_halves_p_at_fixed_query_counts_as_autoattack():
    # AutoAttack's Square (5000 queries) keeps the 10 000-query marks: p halves
    # after query 10, 50, 200, ... ; rescaled, the marks would come twice as early
    assert p_schedule(0.8, 30, 5000, rescale=False) == 0.4
    assert p_schedule(0.8, 30, 5000) == 0.2
    assert p_schedule(0.8, 4500, 5000, rescale=False) == pytest.approx(0.8 / 128)


def test_cascade_runs_the_four_stages_on_the_points_still_robust():
    x, y = first_images(12)
    model = models.load_builtin("fmnist-cnn-pgdat")
    res = run_to_end(run_suite(model, x, y, "autoattack", 0.1, steps=3,
                               n_targets=2, queries=20))
    assert list(res["per_attack"]) == STAGES
    accs = [res["clean_acc"], *res["per_attack"].values()]
    assert accs == sorted(accs, reverse=True)
    for before, label in zip(accs[:-1], STAGES, strict=True):
        assert res["attacked"][label] == round(before * 12)
    assert res["robust_acc"] == res["per_attack"]["square"] == sum(res["robust"]) / 12
    assert res["eps"] == {"linf": 0.1}


# Square's queries, the same on both sides: its cost is per query whatever the
# batch, so the authors' 5000 would take minutes here on their own;
# bench/evaluate.py compares the full settings on 1,000 images. The steps of a
# tiny batch cost about the same as a big one's, so on the robust model both
# sides also take 3 target classes instead of 9 (APGD-T and FAB-T), which keeps
# the test near a minute on 2 cores; the standard model keeps all 9.
TEST_QUERIES = 300


def _pyautoattack_robust(model, x, y, eps, n_targets):
    """Robust flags after pyautoattack's AutoAttack(version="standard")."""
    auto = pytest.importorskip("pyautoattack")
    attack = auto.AutoAttack(model, norm="Linf", eps=eps, version="standard",
                             seed=0, device="cpu")
    attack.square.n_queries = TEST_QUERIES
    attack.apgd_targeted.n_target_classes = n_targets
    attack.fab.n_target_classes = n_targets
    with warnings.catch_warnings():  # its own sanity-check notes on the model
        warnings.simplefilter("ignore")
        x_adv, _ = attack.run_standard_evaluation(x, y, batch_size=500)
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    with torch.no_grad():
        return model(x_adv).argmax(1) == y


@pytest.mark.slow
@pytest.mark.parametrize(("name", "eps", "n", "n_targets"), [
    ("fmnist-cnn-pgdat", 0.1, 16, 3),
    ("fmnist-cnn-standard", 0.02, 16, 9),  # at 0.1 APGD-CE alone breaks everything
])
def test_never_weaker_than_the_authors_autoattack(name, eps, n, n_targets):
    pytest.importorskip("pyautoattack")
    x, y = first_images(n)
    model = models.load_builtin(name).eval()
    theirs = _pyautoattack_robust(model, x, y, eps, n_targets)
    ours = run_to_end(run_suite(model, x, y, "autoattack", eps,
                                queries=TEST_QUERIES, n_targets=n_targets))
    assert list(ours["per_attack"]) == STAGES
    their_acc = float(theirs.float().mean())
    assert ours["robust_acc"] <= their_acc
    assert their_acc < ours["clean_acc"]  # the comparison has something to break


def test_cli_eval_suite_autoattack_json(capsys, tmp_path):
    from explorer.cli import main

    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-pgdat", "--suite", "autoattack", "--steps", "3",
                 "--n-targets", "2", "--queries", "10", "--n", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["suite"] == "autoattack"
    assert list(result["per_attack"]) == STAGES
    assert result["robust_acc"] == result["per_attack"]["square"]
    assert result["eps"] == {"linf": pytest.approx(0.1)}
    assert result["attacked"]["apgd-ce"] == round(8 * result["clean_acc"])


def test_cli_help_names_the_robustbench_comparable_suite(capsys):
    from explorer.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "autoattack (AutoAttack's standard version" in out
    assert "comparable to RobustBench" in out
