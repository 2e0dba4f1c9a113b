"""The Certify & Detect page's Randomized smoothing tab, driven like a user:
certify (the curve grows per image), click an image, attack the same
images, cancel, and the messages for bad settings and missing inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLineEdit

from explorer.core import models
from explorer.gui.panels.certify.panel import CertifyPanel
from explorer.gui.panels.certify.smoothing_views import GRID_POINTS

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def gaussian():
    return models.load_builtin("fmnist-cnn-gaussian")


@pytest.fixture
def page(qtbot, ctx, one_thread):
    p = CertifyPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1200, 740)
    p.show()
    yield p
    tab = p.smoothing
    for controls in (tab.controls, tab.attack_controls):
        if controls.running:
            with qtbot.waitSignal(controls.finished, timeout=20_000):
                controls.cancel()


@pytest.fixture
def tab(page, ctx, fmnist, gaussian):
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(gaussian, "fmnist-cnn-gaussian")
    return page.smoothing


def _edit(form, name: str, value) -> None:
    editor = form.editor(name)
    if isinstance(editor, QLineEdit):
        editor.setText(str(value))
        editor.editingFinished.emit()
    else:
        editor.setValue(value)


def _click(tile) -> None:
    tile.mousePressEvent(QMouseEvent(
        QMouseEvent.Type.MouseButtonPress, QPointF(5, 5), QPointF(5, 5),
        Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier))


def test_certify_grows_the_curve_and_a_click_shows_the_counts(qtbot, tab):
    for name, value in (("samples0", 10), ("samples", 100), ("images", 6),
                        ("radii", "0, 0.25")):
        _edit(tab.form, name, value)
    seen = []
    with qtbot.waitSignal(tab.certified, timeout=TIMEOUT) as done:
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
        tab.handle.snapshot.connect(  # after the tab's own receiver
            lambda _e: seen.append(len(tab.plot.certified.yData)))
    results = done.args[0]
    assert seen == [GRID_POINTS] * 6  # the curve was drawn after each image
    assert len(tab.radii) == 6
    assert results["n"] == 6
    assert results["samples"] == 100
    y = tab.plot.certified.yData
    assert y[0] == pytest.approx(100 * results["certified_acc"][0.0])
    assert np.all(np.diff(y) <= 0)  # certified accuracy falls with the radius
    assert list(tab.plot.marks.xData) == [0.0, 0.25]
    assert "Certified accuracy at radius 0:" in tab.summary.text()
    captions = tab.grid.captions
    assert all(c.startswith("r ") or c in ("wrong", "abstain") for c in captions)
    assert sum(c.startswith("r ") for c in captions) == round(
        6 * results["certified_acc"][0.0])
    _click(tab.grid._tiles[3])
    assert tab.chosen == 3
    assert "Image #3" in tab.counts.text.text()
    assert tab.counts.bars.values.sum() == 100  # the n estimation counts
    expected = results["radii"][3]
    if expected is not None:
        assert f"radius {expected:.3f}" in tab.counts.text.text()


def test_attack_draws_base_and_smoothed_curves(qtbot, tab):
    _edit(tab.form, "images", 4)
    _edit(tab.form, "samples", 100)
    _edit(tab.form, "radii", "0,0.25")
    with qtbot.waitSignal(tab.certified, timeout=TIMEOUT):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.plot.x_max < 1.0
    _edit(tab.form, "radii", "0,1.5")
    for name, value in (("steps", 2), ("eot", 1), ("predict_samples", 20)):
        _edit(tab.attack_form, name, value)
    with qtbot.waitSignal(tab.attacked, timeout=TIMEOUT) as done:
        qtbot.mouseClick(tab.attack_button, Qt.MouseButton.LeftButton)
    results = done.args[0]
    assert results["n"] == 4
    assert tab.plot.points("base") == 2
    assert tab.plot.points("smoothed") == 2
    base = list(tab.plot.base.yData)
    assert base == [100 * results["base_acc"][0.0], 100 * results["base_acc"][1.5]]
    assert "PGD-l2 with 2 steps" in tab.attack_controls.status.text()
    assert tab.plot.x_max >= 1.5  # the plot made room for the largest radius


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("sigma", 0.0, "sigma must be positive"),
    ("alpha", 0.0, "alpha must be in (0, 1)"),
    ("alpha", 1.0, "alpha must be in (0, 1)"),
    ("radii", "0,x", "radii must be numbers"),
])
def test_bad_settings_say_what_is_wrong(qtbot, tab, name, value, needle):
    _edit(tab.form, name, value)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert needle in tab.controls.status.text()
    assert tab.handle is None  # nothing started
    qtbot.mouseClick(tab.attack_button, Qt.MouseButton.LeftButton)
    assert needle in tab.attack_controls.status.text()


def test_cancel_stops_certifying(qtbot, tab):
    _edit(tab.form, "samples", 1_000_000)
    _edit(tab.form, "images", 3)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.running
    with qtbot.waitSignal(tab.controls.finished, timeout=TIMEOUT) as ended:
        qtbot.mouseClick(tab.controls.cancel_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["cancelled"]
    assert tab.controls.status.text() == "Cancelled."
    assert tab.results is None


def test_without_a_model_the_banner_says_so(page, ctx, fmnist):
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    tab = page.smoothing
    assert tab.banner.isVisible()
    assert "Choose a model" in tab.banner.text()
    assert not tab.run_button.isEnabled()
    assert page.tabs.tabText(0) == "Randomized smoothing"


def test_demo_certifies_and_attacks_a_handful(qtbot, page):
    with qtbot.waitSignal(page.demo_finished, timeout=120_000):
        page.run_demo()
    tab = page.smoothing
    assert tab.results is not None
    assert tab.results["n"] == 12
    assert tab.empirical is not None
    assert tab.chosen == 0
