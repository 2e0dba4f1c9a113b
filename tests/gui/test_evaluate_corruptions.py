"""Evaluate page, Corruptions tab: run on the checked models, watch the noise
and rotation curves and the adversarial confusion matrix fill in."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import check_models
from PySide6.QtCore import Qt

from explorer.core import models
from explorer.core.analysis.corruption import ANGLES, SIGMAS

TWO = ["fmnist-cnn-standard", "fmnist-cnn-pgdat"]
N = 8



@pytest.fixture
def panel(evaluate_page):
    page = evaluate_page({"suite": "quick", "eps": 0.05, "n": N})
    page.tabs.setCurrentWidget(page.corruptions)
    return page


def test_two_models_draw_their_curves_and_confusion(qtbot, ctx, panel, fmnist):
    check_models(panel, TWO)
    tab = panel.corruptions
    assert "PGD-20 at eps 0.05" in tab.about.text()
    with qtbot.waitSignal(tab.corruptions_done, timeout=60000):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert not panel.running  # the page's own evaluation was never started
    for i in range(2):
        assert tab.noise.points(i) == len(SIGMAS)
        assert tab.rotation.points(i) == len(ANGLES)
    assert tab.noise.points(2) == tab.rotation.points(2) == 0
    legend = [label.text for _, label in tab.noise.legend.items]
    assert legend == TWO
    results = tab.results
    assert results["names"] == TWO
    # the curves show what the job measured, in percent
    noise = results["models"][TWO[1]]["corruptions"]
    assert np.allclose(tab.noise.curves[1].yData, 100 * np.array(noise["noise_acc"]))
    assert tab.noise.curves[1].xData.tolist() == list(SIGMAS)
    # the heat map: the first model's matrix, every image counted once
    assert [tab.model_combo.itemText(i) for i in range(2)] == TWO
    assert tab.heat.matrix.shape == (10, 10)
    assert tab.heat.matrix.sum() == N
    first = np.array(results["models"][TWO[0]]["adversarial_confusion"]["confusion"])
    assert np.array_equal(tab.heat.matrix, first)
    # class names on both axes (shortened under the columns)
    bottom = [text for _, text in tab.heat.plot.getAxis("bottom")._tickLevels[0]]
    left = [text for _, text in tab.heat.plot.getAxis("left")._tickLevels[0]]
    assert len(bottom) == len(left) == 10
    for name, column, row in zip(fmnist.classes, bottom, left, strict=True):
        assert name.startswith(column.rstrip("…"))
        assert row.startswith(name)
    tab.model_combo.setCurrentIndex(1)
    second = np.array(results["models"][TWO[1]]["adversarial_confusion"]
                      ["confusion"])
    assert np.array_equal(tab.heat.matrix, second)
    assert tab.heat.matrix.sum() == N
    assert tab.summary.text().startswith(f"{TWO[1]}: {int(np.trace(second))} of {N}")
    run = ctx.workspace.runs(kind="eval")[0]
    assert run.title == f"corruptions: {', '.join(TWO)}"
    qtbot.waitUntil(lambda: ctx.workspace.get(run.id).status == "finished")


def test_no_model_or_no_budget_is_a_message(qtbot, panel):
    tab = panel.corruptions
    check_models(panel, [])
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "Check at least one model" in tab.controls.status.text()
    check_models(panel, TWO[:1])
    panel.settings_box.eps.setValue(0.0)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "eps must be in (0, 1]" in tab.controls.status.text()


def test_a_model_that_does_not_fit_the_data_fails_with_its_name(
        qtbot, panel, tmp_path):
    path = tmp_path / "cifar_shaped.safetensors"
    models.save(models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1), path)
    assert panel.models.add_file(str(path)) is None
    check_models(panel, ["fmnist-cnn-standard", "cifar_shaped"])
    tab = panel.corruptions
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(tab.handle.finished, timeout=30000):
        pass
    assert tab.controls.last_state == "failed"
    assert "'cifar_shaped' does not fit the data" in tab.controls.status.text()
    assert tab.results is None
