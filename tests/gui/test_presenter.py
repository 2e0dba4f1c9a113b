"""Presenter mode, driven by the keyboard like a presenter: it starts full
screen with large type and no navigation, Right walks through every step of
the story (each page shows the numbers its caption quotes), Left goes back,
Ctrl+PageDown leaves the story for another page and Right returns, a step's
job is cancelled when moving on, and Esc restores the window."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from explorer.cli.main import build_parser
from explorer.gui.main_window import MainWindow
from explorer.gui.panels.certify import panel as certify_panel
from explorer.gui.panels.playground import panel as playground_panel
from explorer.gui.presenter import mode as presenter_mode
from explorer.gui.presenter import story

TIMEOUT = 120_000
PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path, one_thread):
    """The main window opened as ``explorer gui --presenter`` opens it, with
    small demos (few playground steps, a few certified images)."""
    monkeypatch.setattr(playground_panel, "DEMO_STEPS", 6)
    monkeypatch.setattr(certify_panel, "DEMO_SETTINGS", {
        "sigma": 0.25, "samples0": 20, "samples": 100, "alpha": 0.01, "images": 3})
    monkeypatch.setattr(certify_panel, "DEMO_ATTACK",
                        {"steps": 2, "eot": 1, "predict_samples": 20})
    font = QApplication.font()
    w = MainWindow(workspace=str(tmp_path / "ws"), device="cpu",
                   ask_on_close=False, panel="attack")
    qtbot.addWidget(w)
    w.font_before = font.pointSizeF()
    w.loaded.connect(w.start_presenter)  # what app.run does for --presenter
    w.show()
    w.finish_loading()
    yield w
    if getattr(w, "presenter", None) is not None:
        w.presenter.leave()
    w.ctx.runner.cancel_all()
    w.close()
    QApplication.setFont(font)


def _press(qtbot, w, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(w.presenter.bar, key, modifier)


def _ready(qtbot, w, index: int) -> str:
    p = w.presenter
    qtbot.waitUntil(lambda: p.index == index and p.run is not None
                    and p.run.caption is not None, timeout=TIMEOUT)
    assert w.stack.currentWidget() is w.panels[p.story.steps[index].page]
    assert p.bar.caption.text() == p.run.caption
    return p.run.caption


def _top(html: str) -> float:
    """The best class's percentage in a top-5 table the page shows."""
    return float(PERCENT.search(re.sub("<[^>]+>", " ", html)).group(1))


def _same(quoted: float, html: str) -> bool:
    """A caption's whole percent against the page's one-decimal percent."""
    return abs(quoted - _top(html)) <= 0.51


def _quoted(caption: str) -> list[float]:
    return [float(v) for v in PERCENT.findall(caption)]


def test_gui_has_presenter_flags():
    args = build_parser().parse_args(["gui", "--presenter", "--step", "3"])
    assert args.presenter is True
    assert args.step == 3
    assert build_parser().parse_args(["gui"]).presenter is False


def test_right_walks_the_story_left_goes_back_esc_restores(qtbot, window):
    w, base = window, window.font_before
    p = w.presenter
    assert p.active
    assert not w.nav.isVisible()
    assert p.toolbar.isVisible()
    assert w.windowState() & Qt.WindowState.WindowFullScreen
    assert QApplication.font().pointSizeF() == pytest.approx(
        base * presenter_mode.FONT_SCALE)
    attack = w.panels["attack"]
    triplet = attack.live.triplet

    caption = _ready(qtbot, w, 0)  # a confident prediction
    assert "standard model" in caption
    assert _same(_quoted(caption)[0], triplet.clean_text.text())
    assert float(np.std(triplet.original.image)) > 0.01
    shown = attack.picker.class_name(
        int(attack.live_box.result["pred_clean"][attack.live.focus]))
    assert shown in caption

    _press(qtbot, w, Qt.Key.Key_Right)  # the perturbation, amplified
    caption = _ready(qtbot, w, 1)
    quoted = int(re.search(r"at most (\d+)/255", caption).group(1))
    assert quoted == round(255 * triplet.max_delta)
    assert float(np.abs(triplet.delta).max()) > 0

    _press(qtbot, w, Qt.Key.Key_Space)  # fooled
    caption = _ready(qtbot, w, 2)
    assert _same(_quoted(caption)[0], triplet.adv_text.text())

    _press(qtbot, w, Qt.Key.Key_Right)  # the robust model
    caption = _ready(qtbot, w, 3)
    assert w.ctx.session.model_source == "fmnist-cnn-pgdat"
    assert _same(_quoted(caption)[0], triplet.adv_text.text())
    result = attack.live_box.result
    held = int((result["pred_adv"] == result["y"]).sum())
    assert f"{held} of 8 images" in caption

    _press(qtbot, w, Qt.Key.Key_Right)  # the playground trains live
    caption = _ready(qtbot, w, 4)
    play = w.panels["playground"]
    assert f"After {play.shown_step} training steps" in caption
    assert play.shown_step > 0
    for view, acc in zip(play.views, _quoted(caption), strict=True):
        assert f"accuracy {acc}%" in view.stats.text()
        assert float(np.std(view.image.image)) > 0.01  # the regions are drawn

    _press(qtbot, w, Qt.Key.Key_Right)  # certified radius
    caption = _ready(qtbot, w, 5)
    smoothing = w.panels["certify"].smoothing
    results = smoothing.results
    assert results["n"] == 3
    assert "Certified accuracy at radius" in smoothing.summary.text()
    radius = float(re.search(r"up to ([0-9]+(?:\.[0-9]+)?)", caption).group(1))
    acc = {float(k): v for k, v in results["certified_acc"].items()}[radius]
    assert _quoted(caption)[0] == pytest.approx(100 * acc, abs=0.51)
    assert f"of {results['n']} images" in caption

    _press(qtbot, w, Qt.Key.Key_Right)  # draw your own
    caption = _ready(qtbot, w, 6)
    assert "draw a digit or a shoe" in caption
    assert attack.picker.tabs.currentIndex() == 1
    attack.picker.canvas.stroke([(8, 6), (20, 6), (20, 22), (8, 22), (8, 6)])
    qtbot.mouseClick(attack.picker.add_drawing_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(attack.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: p.bar.caption.text().startswith("Your drawing"),
                    timeout=TIMEOUT)
    before, after = _quoted(p.bar.caption.text())
    assert before == pytest.approx(_top(triplet.clean_text.text()), abs=0.51)
    assert after == pytest.approx(_top(triplet.adv_text.text()), abs=0.51)

    _press(qtbot, w, Qt.Key.Key_Right)  # the last step stays
    assert p.index == 6
    _press(qtbot, w, Qt.Key.Key_Left)
    _ready(qtbot, w, 5)

    _press(qtbot, w, Qt.Key.Key_Escape)
    assert not p.active
    assert w.nav.isVisible()
    assert not p.toolbar.isVisible()
    assert not w.windowState() & Qt.WindowState.WindowFullScreen
    assert QApplication.font().pointSizeF() == pytest.approx(base)


def test_moving_on_cancels_the_steps_job_and_pages_can_be_browsed(qtbot, window,
                                                                  monkeypatch):
    w = window
    p = w.presenter
    monkeypatch.setitem(story.PGD, "steps", 10_000)  # runs until cancelled
    attack = w.panels["attack"]
    p.go(0)  # restart the first step with the long attack
    qtbot.waitUntil(lambda: attack.live_box.running, timeout=TIMEOUT)
    jobs = p.step_jobs()
    assert attack.live_box.job in jobs
    _press(qtbot, w, Qt.Key.Key_5)  # jump to the playground: the attack stops
    assert p.index == 4
    assert w.stack.currentWidget() is w.panels["playground"]
    qtbot.waitUntil(lambda: not any(h.running for h in jobs), timeout=20_000)
    assert attack.live_box.result is None
    assert "cancelled" in attack.status.text()
    _press(qtbot, w, Qt.Key.Key_Right)
    assert p.index == 5

    _press(qtbot, w, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert p.browsing is not None
    assert w.stack.currentWidget() is w.panels[p.browsing]
    assert w.stack.currentWidget() is not w.panels["certify"]
    _press(qtbot, w, Qt.Key.Key_Right)  # back to the story, same step
    assert p.index == 5
    assert p.browsing is None
    assert w.stack.currentWidget() is w.panels["certify"]
    _ready(qtbot, w, 5)

    _press(qtbot, w, Qt.Key.Key_Escape)
    assert w.nav.isVisible()
    w.presenter_action.trigger()  # View > Presenter mode (F11) enters again
    assert p.active
    assert not w.nav.isVisible()
    assert p.index == 5
    _press(qtbot, w, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not w.ctx.runner.active(), timeout=20_000)


def test_captions_say_whole_percents_but_never_round_to_certainty():
    assert story.percent(0.973) == "97 %"
    assert story.percent(0.996) == "99.6 %"
    assert story.percent(1.0) == "100 %"
    assert story.percent(0.003) == "0.3 %"
    assert story.percent(0.0) == "0 %"


@pytest.mark.parametrize(("argv", "needle"), [
    (["gui", "--presenter", "--step", "9"], "--step must be between 1 and 7, got 9"),
    (["gui", "--presenter", "--step", "0"], "--step must be between 1 and 7, got 0"),
    (["gui", "--step", "2"], "--step needs --presenter"),
])
def test_a_bad_step_is_one_line(capsys, argv, needle):
    from explorer.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_presenter_screenshot_of_a_step(tmp_path):
    """``explorer gui --presenter --step 3 --screenshot``: the fooled step."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from PySide6.QtGui import QImage

    png = tmp_path / "step3.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               EXPLORER_HOME=str(tmp_path / "ws"),
               EXPLORER_CONFIG_DIR=str(tmp_path / "cfg"))
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "gui", "--presenter", "--step", "3",
         "--screenshot", str(png)],
        capture_output=True, text=True, env=env, timeout=240,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr
    image = QImage(str(png))
    assert image.width() >= 1280
    assert image.height() >= 800
    colours = {image.pixel(x, y) for x in range(0, 1280, 7) for y in range(0, 800, 7)}
    assert len(colours) > 50
