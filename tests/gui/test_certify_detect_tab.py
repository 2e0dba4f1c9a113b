"""The Certify & Detect page's Detect tab, built standalone on the session's
model and data: ROC curves with their AUCs, the adaptive attack dashed."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from explorer.core import models
from explorer.gui.panels.certify.detect_tab import DetectTab

STD = "fmnist-cnn-standard"
FAST = {"eps": 0.1, "n": 24, "steps": 3, "fit_n": 60}


@pytest.fixture
def tab(qtbot, ctx, fmnist, one_thread):
    widget = DetectTab(ctx)
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    widget.form.set_values(FAST)
    yield widget
    if widget.handle is not None and widget.handle.running:
        with qtbot.waitSignal(widget.handle.finished, timeout=20_000):
            widget.handle.cancel()


def _session(ctx, fmnist):
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(models.load_builtin(STD), STD)


def _run(qtbot, tab):
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is not None, tab.status.text()
    with qtbot.waitSignal(tab.handle.finished, timeout=120_000):
        pass
    assert tab.controls.last_state == "done", tab.status.text()


def test_run_draws_one_roc_per_detector_with_its_auc(qtbot, ctx, fmnist, tab):
    _session(ctx, fmnist)
    tab.set_checked(["kd", "non-me"])
    _run(qtbot, tab)
    r = tab.results
    assert list(r["detectors"]) == ["kd", "non-me"]
    assert set(tab.plot.curves) == {"kd", "non-me"}
    for name in ("kd", "non-me"):
        xs, ys = tab.plot.curves[name].getData()
        assert xs[0] == 0
        assert ys[-1] == 1
        assert len(xs) >= 3
    assert tab.plot.legend_texts() == [
        f"kd: AUC {r['detectors']['kd']['auc']:.3f}",
        f"non-me: AUC {r['detectors']['non-me']['auc']:.3f}"]
    assert f"AUC {r['detectors']['kd']['auc']:.3f}" in tab.summary.text()
    assert "not trained with reverse cross-entropy" in tab.notes.text()
    assert r["training_method"] == "standard"
    assert tab.summary.text().startswith(f"Model <b>{STD}</b> (trained: standard)")
    assert f"ROC on {STD}:" in tab.plot.getPlotItem().titleLabel.text
    assert r["n_adv"] > 0
    plot = tab.plot.getPlotItem()
    assert plot.getAxis("bottom").labelText == "false positive rate"
    assert plot.getAxis("left").labelText == "true positive rate"
    run = ctx.workspace.runs(kind="detect")[0]
    assert run.config["fit_split"] == "train"


def test_adaptive_attack_adds_a_dashed_curve(qtbot, ctx, fmnist, tab):
    _session(ctx, fmnist)
    tab.set_checked(["non-me"])
    tab.adaptive.setChecked(True)
    _run(qtbot, tab)
    per = tab.results["detectors"]["non-me"]
    assert set(tab.plot.curves) == {"non-me", "non-me (adaptive)"}
    dashed = tab.plot.curves["non-me (adaptive)"].opts["pen"]
    assert dashed.style() == Qt.PenStyle.DashLine
    assert (f"non-me, adaptive attack: AUC {per['auc_adaptive']:.3f}"
            in tab.plot.legend_texts())
    assert f"adaptive attack: AUC {per['auc_adaptive']:.3f}" in tab.summary.text()


def test_cancel_stops_the_job(qtbot, ctx, fmnist, tab):
    _session(ctx, fmnist)
    tab.form.set_values({"n": 1000, "steps": 200})
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is not None
    with qtbot.waitSignal(tab.handle.finished, timeout=20_000):
        qtbot.mouseClick(tab.controls.cancel_button, Qt.MouseButton.LeftButton)
    assert tab.controls.last_state == "cancelled"
    assert tab.results is None
    assert tab.run_button.isEnabled()


def test_missing_session_and_bad_values_are_messages(qtbot, ctx, fmnist, tab):
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "No data set" in tab.status.text()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert "No model" in tab.status.text()
    ctx.session.set_model(models.load_builtin(STD), STD)
    tab.set_checked([])
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert "Check at least one detector" in tab.status.text()
    tab.set_checked(["kd"])
    tab.form.set_values({"eps": 0.0})
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "eps must be in (0, 1]" in tab.status.text()
    tab.form.set_values({"eps": 0.1, "fit_n": 5})
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "fit_n must be an integer of at least 20, got 5" in tab.status.text()
