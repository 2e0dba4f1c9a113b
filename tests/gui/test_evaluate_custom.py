"""Evaluate & Compare with a custom suite: chosen attacks at typed budgets."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.gui.widgets.job_controls import ERROR_STYLE

TWO = ["fmnist-cnn-standard", "fmnist-cnn-trades"]
FAST = {"check_n": 0, "examples": 2, "suite_options": {"steps": 3}}



@pytest.fixture
def panel(evaluate_page):
    return evaluate_page({"n": 16, "checks": False, "sweep": True}, options=FAST,
                         checked=TWO, show=True)


def _choose_custom(qtbot, panel, attacks, budgets):
    box = panel.settings_box
    box.suite.setCurrentIndex(box.suite.findData("custom"))
    for i in range(box.custom.list.count()):
        item = box.custom.list.item(i)
        item.setCheckState(Qt.CheckState.Checked if item.text() in attacks
                           else Qt.CheckState.Unchecked)
    box.custom.budgets.clear()
    qtbot.keyClicks(box.custom.budgets, budgets)


def test_custom_suite_fills_one_column_per_budget_and_attack(qtbot, panel):
    box = panel.settings_box
    assert box.suite.findText("custom…") == box.suite.count() - 1  # the last
    assert not box.custom.isVisible()
    _choose_custom(qtbot, panel, ["fgsm", "pgd"], "0.05, 8/255")
    assert box.custom.isVisible()
    assert not box.eps.isVisible()
    with qtbot.waitSignal(panel.evaluation_done, timeout=60000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    table = panel.table
    headings = [table.horizontalHeaderItem(c).text()
                for c in range(table.columnCount())]
    assert headings == ["clean", "robust @8/255", "robust @0.05", "fgsm@8/255",
                        "pgd@8/255", "fgsm@0.05", "pgd@0.05"]
    entries = panel.results["models"]
    assert panel.results["attacks"] == ["fgsm", "pgd"]
    for row, entry in enumerate(entries):
        shown = {"robust@0.05": entry["per_budget"]["0.05"],
                 "pgd@8/255": entry["per_attack"]["pgd@8/255"],
                 "clean_acc": entry["clean_acc"]}
        for key, value in shown.items():
            assert table.text(row, key).lstrip("★ ") == f"{100 * value:.1f}%"
        assert entry["per_budget"]["0.05"] <= entry["per_budget"]["8/255"]
    low = [e["per_budget"]["0.05"] for e in entries]
    best = int(np.argmax(low))
    assert table.text(best, "robust@0.05").startswith("★")
    assert panel.curves.drawn() == 2  # the budgets are the curve, no extra sweep
    assert panel.results["sweep_attack"] is None
    assert list(panel.curves.curves[0].xData) == pytest.approx([0, 8 / 255, 0.05])
    run = panel.ctx.workspace.get(panel.ctx.workspace.runs(kind="eval")[0].id)
    assert run.config["attacks"] == ["fgsm", "pgd"]
    assert run.config["eps"] == 0.05  # the masking checks' budget: the largest


@pytest.mark.parametrize(("attacks", "budgets", "message"), [
    (["pgd"], "0.1, 2", r"budget must be in (0, 1] (pixel units) for linf, got 2"),
    (["pgd"], "0.1, abc", r"budgets: 'abc' is not a number"),
    (["pgd"], "", "give at least one budget"),
    ([], "0.1", "check at least one attack"),
])
def test_bad_custom_entries_are_a_red_message(qtbot, panel, attacks, budgets,
                                              message):
    _choose_custom(qtbot, panel, attacks, budgets)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.handle is None
    assert message in panel.status.text()
    assert panel.status.styleSheet() == ERROR_STYLE
    if budgets != "0.1":  # the field itself flags a bad budget as it is typed
        assert "#b00020" in panel.settings_box.custom.hint.styleSheet()
