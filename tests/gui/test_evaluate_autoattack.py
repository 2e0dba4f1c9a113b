"""Evaluate & Compare with the autoattack suite: picked in the combo, run to
the end, its four stages and the robust accuracy in the table."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

MODEL = "fmnist-cnn-pgdat"
STAGES = ["apgd-ce", "apgd-t", "fab-t", "square"]



@pytest.fixture
def panel(evaluate_page):
    # a handful of images and short stages: the test is about the page
    return evaluate_page({"suite": "quick", "eps": 0.1, "n": 6, "checks": False,
                          "sweep": False},
                         options={"examples": 0, "suite_options": {
                             "steps": 3, "n_targets": 2, "queries": 20}},
                         checked=[MODEL], show=True)


def test_combo_offers_autoattack_with_its_tooltip(panel):
    box = panel.settings_box
    index = box.suite.findData("autoattack")
    assert index >= 0
    tip = box.suite.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert "AutoAttack's standard version" in tip
    assert "FAB-T" in tip
    assert "RobustBench" in tip
    standard = box.suite.itemData(box.suite.findData("standard"),
                                  Qt.ItemDataRole.ToolTipRole)
    assert "without FAB-T" in standard


def test_autoattack_runs_and_fills_its_four_stages(qtbot, panel):
    box = panel.settings_box
    box.suite.setCurrentIndex(box.suite.findData("autoattack"))
    assert "RobustBench" in box.suite_help.text()
    assert box.eps.isVisible()
    with qtbot.waitSignal(panel.evaluation_done, timeout=60000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    table = panel.table
    headings = [table.horizontalHeaderItem(c).text()
                for c in range(table.columnCount())]
    assert headings == ["clean", *STAGES, "robust"]
    (entry,) = panel.results["models"]
    assert list(entry["per_attack"]) == STAGES
    shown = {**entry["per_attack"], "robust_acc": entry["robust_acc"]}
    for key, value in shown.items():
        assert table.text(0, key).lstrip("★ ") == f"{100 * value:.1f}%"
    run = panel.ctx.workspace.get(panel.ctx.workspace.runs(kind="eval")[0].id)
    assert run.config["suite"] == "autoattack"
    qtbot.waitUntil(lambda: not panel.running, timeout=10000)
