"""The Playground panel, used like a person would: play, pause, step, reset,
new data, a bad value, the demo."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

from explorer.gui.panels.playground import panel as playground
from explorer.gui.panels.playground.panel import PlaygroundPanel

GRID = 100  # the playground's default grid


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny MLPs gain nothing from intra-op threads; on a busy machine the
    threads only wait for each other (the app also leaves a core to the UI)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def panel(qtbot, ctx):
    p = PlaygroundPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 760)
    p.show()
    qtbot.waitUntil(lambda: p.shown_step == 0 and not p.running, timeout=10000)
    yield p
    p.pause()
    qtbot.waitUntil(lambda: not p.running, timeout=10000)


def click(qtbot, panel, name):
    qtbot.mouseClick(panel.controls.buttons[name], Qt.MouseButton.LeftButton)


def settle(qtbot, panel):
    """Wait until no job runs and the last snapshot is on screen."""
    qtbot.waitUntil(lambda: not panel.running, timeout=10000)
    qtbot.waitUntil(lambda: panel.shown_step == panel.pg.steps, timeout=5000)


def test_play_redraws_both_views_and_pause_stops(qtbot, panel):
    a, b = panel.views
    assert "step 0" in a.stats.text()
    assert "loss –" in a.stats.text()  # nothing trained yet
    assert a.title.text().startswith("Standard")
    assert b.title.text().startswith("PGD-AT")
    frames = panel.frames
    click(qtbot, panel, "Play")
    assert panel.running
    qtbot.waitUntil(lambda: panel.frames >= frames + 3 and panel.shown_step > 0,
                    timeout=10000)
    for view in panel.views:
        assert view.shape == (GRID, GRID)
        assert view.image.image.shape == (GRID, GRID, 3)
        assert "loss –" not in view.stats.text()
        assert f"step {panel.shown_step}" in view.stats.text()
    assert not panel.controls.buttons["Play"].isEnabled()
    click(qtbot, panel, "Pause")
    settle(qtbot, panel)
    stopped_at = panel.pg.steps
    assert panel.ctx.runner.active() == []
    assert panel.controls.buttons["Play"].isEnabled()
    assert f"paused at step {stopped_at}" in panel.status.text()


def test_step_advances_by_the_speed_and_reset_returns_to_zero(qtbot, panel):
    panel.controls.slider.setValue(3)
    click(qtbot, panel, "Step")
    settle(qtbot, panel)
    assert panel.pg.steps == 3
    click(qtbot, panel, "Step")
    settle(qtbot, panel)
    assert panel.pg.steps == 6
    assert "step 6" in panel.views[1].stats.text()
    model = panel.pg.models[0]
    click(qtbot, panel, "Reset")
    settle(qtbot, panel)
    assert panel.pg.steps == 0
    assert panel.pg.models[0] is not model  # fresh weights
    assert "step 0" in panel.views[0].stats.text()


def test_reset_while_playing_stops_at_step_zero(qtbot, panel):
    click(qtbot, panel, "Play")
    qtbot.waitUntil(lambda: panel.shown_step > 0, timeout=10000)
    click(qtbot, panel, "Reset")
    settle(qtbot, panel)
    assert panel.pg.steps == 0
    assert not panel.playing


def test_changing_the_data_set_starts_afresh(qtbot, panel):
    panel.controls.slider.setValue(2)
    click(qtbot, panel, "Step")
    settle(qtbot, panel)
    old = panel.pg
    panel.data_form.editor("data").setCurrentText("spirals")
    qtbot.waitUntil(lambda: panel.pg is not old, timeout=5000)
    settle(qtbot, panel)
    assert panel.pg.steps == 0
    assert len(panel.pg.classes) == 3
    label = panel.views[0].plot.getAxis("bottom").labelText
    assert "spirals" in label
    assert "class 2" in panel.views[0].legend.text()
    assert panel.views[0].shape == (GRID, GRID)


def test_an_eps_out_of_the_box_shows_a_message(qtbot, panel):
    editor = panel.boxes[1].method_form.editor("eps")
    editor.selectAll()
    qtbot.keyClicks(editor, "0.8")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.pg is None, timeout=5000)
    assert panel.status.text() == "Model B: eps must be in [0, 0.5], got 0.8"
    assert not panel.controls.buttons["Play"].isEnabled()
    panel.play()  # ignored: nothing to train
    assert not panel.running
    editor.setValue(0.1)
    qtbot.waitUntil(lambda: panel.pg is not None, timeout=5000)
    settle(qtbot, panel)
    assert panel.status.text() == "ready: press Play"
    assert "ε=0.1" in panel.views[1].title.text()


def test_the_demo_trains_standard_against_pgd_at(qtbot, panel, monkeypatch):
    monkeypatch.setattr(playground, "DEMO_STEPS", 4)
    with qtbot.waitSignal(panel.demo_finished, timeout=15000):
        panel.run_demo()
    assert panel.pg.steps == 4
    assert panel.shown_step == 4
    assert [lr.method for lr in panel.pg.learners] == ["standard", "pgd-at"]
    assert "moons" in panel.views[1].plot.getAxis("left").labelText
