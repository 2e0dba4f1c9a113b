"""`explorer eval --suite custom --attacks ... --budgets ...`."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main


def test_custom_suite_reports_each_budget(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--suite", "custom", "--attacks",
                 "fgsm,pgd", "--budgets", "0.05, 8/255", "--steps", "3", "--n", "16",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(result["per_attack"]) == ["fgsm@8/255", "pgd@8/255", "fgsm@0.05",
                                          "pgd@0.05"]
    assert result["budgets"] == pytest.approx([8 / 255, 0.05])
    assert list(result["per_budget"]) == ["8/255", "0.05"]
    assert result["robust_acc"] == result["per_budget"]["0.05"]
    assert result["per_budget"]["0.05"] <= min(result["per_attack"]["fgsm@0.05"],
                                               result["per_attack"]["pgd@0.05"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--suite", "custom", "--attacks", "jsma", "--budgets", "0.1"],
     "attack 'jsma' has no eps budget"),
    (["--suite", "custom", "--attacks", "pgd"], "give at least one budget"),
    (["--suite", "custom", "--budgets", "0.1"], "choose at least one attack"),
    (["--suite", "quick", "--attacks", "pgd"], "--attacks needs --suite custom"),
    (["--suite", "custom", "--attacks", "pgd", "--budgets", "0.1,3"],
     "budget must be in (0, 1] (pixel units) for linf, got 3"),
    (["--suite", "custom", "--attacks", "pgd", "--budgets", "0.1,x"],
     "budgets: 'x' is not a number"),
])
def test_bad_custom_flags_are_named(capsys, tmp_path, flags, message):
    code = main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", "--n", "4", *flags])
    assert code != 0
    assert message in capsys.readouterr().err

