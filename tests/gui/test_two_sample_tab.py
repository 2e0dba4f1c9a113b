"""Certify & Detect page, Two-sample tab: run, the samples, the null
histogram and the rates, cancel, and a bad alpha."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.gui.panels.certify.two_sample_tab import TwoSampleTab


@pytest.fixture
def tab(qtbot, ctx, one_thread):
    page = TwoSampleTab(ctx)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    yield page
    if page.running:
        with qtbot.waitSignal(page.handle.finished, timeout=20000):
            page.cancel()


def tiny(tab: TwoSampleTab, trials: int = 2) -> None:
    tab.n.setValue(8)
    tab.trials.setValue(trials)
    tab.steps.setValue(2)
    tab.epochs.setValue(3)


def test_run_shows_samples_null_and_rates(qtbot, ctx, tab):
    tiny(tab)
    tab.eps.setValue(0.1)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is not None, tab.status.text()
    assert not tab.run_button.isEnabled()
    with qtbot.waitSignal(tab.handle.finished, timeout=60000):
        pass
    assert tab.controls.last_state == "done", tab.status.text()
    r = tab.results
    assert (r["trials"], r["n_per_sample"], r["eps"], r["pair"]) == \
        (2, 8, 0.1, "tops-shirts")
    assert tab.trials_seen == 2
    for key in ("x", "y", "y_adv"):
        assert sum(t.isVisible() for t in tab.grids[key]._tiles) == 8
    for key in ("type1", "power", "power_attacked", "power_defended"):
        assert tab.figures[key].text() == f"{r[key]:.2f}"
    x, counts = tab.histogram.clean_null.getData()
    assert len(x) == len(counts) + 1  # bin edges around the counts
    assert counts.sum() == 100  # the job's permutations
    stat, stat_adv = tab.histogram.stats
    assert tab.histogram.stat_line.value() == pytest.approx(stat)
    assert tab.histogram.attacked_line.value() == pytest.approx(stat_adv)
    assert tab.histogram.stat_line.isVisible()
    assert tab.histogram.getPlotItem().getAxis("bottom").labelText == \
        "MMD² (unbiased)"
    assert np.isfinite([stat, stat_adv]).all()
    assert tab.grid_titles["y_adv"].text() == "Y attacked (trial 2/2)"
    assert "done" in tab.status.text()
    d = r["tests"]["MMD-D"]
    assert (f"MMD-D: {d['type1']:.2f} / {d['power']:.2f} / "
            f"{d['power_attacked']:.2f}") in tab.breakdown.text()
    run = ctx.workspace.runs(kind="two-sample")[0]
    assert run.config["n_per_sample"] == 8
    qtbot.waitUntil(lambda: ctx.workspace.get(run.id).status == "finished")


def test_choosing_a_pair_says_what_it_is(tab):
    tab.pair.setCurrentIndex(tab.pair.findData("same"))
    assert "P = Q" in tab.pair_text.text()


def test_the_tests_can_be_cancelled(qtbot, tab):
    tiny(tab, trials=50)
    tab.epochs.setValue(500)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(tab.handle.finished, timeout=20000):
        qtbot.mouseClick(tab.controls.cancel_button, Qt.MouseButton.LeftButton)
    assert tab.controls.last_state == "cancelled"
    assert tab.results is None
    assert tab.run_button.isEnabled()


def test_a_bad_alpha_is_a_message(qtbot, tab):
    tab.alpha.setValue(0.0)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "alpha must be in (0, 1), got 0" in tab.status.text()
    assert "b00020" in tab.status.styleSheet()
