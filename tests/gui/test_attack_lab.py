"""The Attack Lab, driven like a user."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from explorer.core import data, models
from explorer.gui.panels.attack_lab.panel import AttackLabPanel

LIVE_TIMEOUT = 30_000



@pytest.fixture(scope="module")
def cnn():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture
def panel(qtbot, ctx):
    p = AttackLabPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 740)
    p.show()
    return p


@pytest.fixture
def loaded(panel, ctx, fmnist, cnn):
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(cnn, "fmnist-cnn-standard")
    return panel


def _choose_pgd(panel, **values):
    panel.attack_form.choose("pgd", {"steps": 10, "alpha": 0.01, "norm": "linf",
                                     "targeted": "none", "restarts": 1, **values})


def _run_live(qtbot, panel):
    with qtbot.waitSignal(panel.live_finished, timeout=LIVE_TIMEOUT):
        panel.run_button.click()


def test_click_images_to_select_and_deselect(qtbot, loaded):
    grid = loaded.picker.grid
    assert len(grid.captions) == 40
    assert not loaded.run_button.isEnabled()
    for i in (0, 3, 5):
        grid._tiles[i].mousePressEvent(_click())
    assert [c.source for c in loaded.picker.selection()] == ["#0", "#3", "#5"]
    assert grid.marked == {0, 3, 5}
    grid._tiles[3].mousePressEvent(_click())
    assert grid.marked == {0, 5}
    assert "2 images selected" in loaded.picker.summary.text()
    assert loaded.run_button.isEnabled()
    loaded.picker.first_n.setValue(6)
    loaded.picker.first_button.click()
    assert len(loaded.picker.selection()) == 6


def _click():
    from PySide6.QtGui import QMouseEvent

    return QMouseEvent(QMouseEvent.Type.MouseButtonPress, QPointF(5, 5),
                       QPointF(5, 5), Qt.MouseButton.LeftButton,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)


def test_eps_slider_and_form_follow_each_other(loaded, ctx):
    _choose_pgd(loaded)
    form = loaded.attack_form
    form.slider.setValue(8)
    assert form.values()["eps"] == pytest.approx(8 / 255)
    assert form.eps_label.text() == "eps = 0.0314 = 8/255"
    form.form.editor("eps").setValue(4 / 255)
    assert form.slider.value() == 4
    assert "4/255" in form.eps_label.text()
    # last choices are kept per attack
    assert '"eps": 0.01568' in ctx.settings.value("attack/params/pgd")
    again = type(form)(ctx.settings)
    again.choose("pgd")
    assert again.values()["eps"] == pytest.approx(4 / 255)


def test_choosing_another_attack_rebuilds_the_form(loaded):
    form = loaded.attack_form
    _choose_pgd(loaded)
    assert "restarts" in form.values()
    form.combo.setCurrentIndex(form.combo.findData("fgsm"))
    assert "restarts" not in form.values()
    assert "steps" not in form.values()
    assert "Goodfellow" in form.description.text()
    assert form.eps_row.isVisible()
    names = [form.combo.itemData(i) for i in range(form.combo.count())]
    from explorer.core import attacks

    assert names == attacks.names()


def test_live_run_fills_curves_scrubber_and_triplet(qtbot, loaded, ctx):
    loaded.picker.select_first(4)
    eps = 8 / 255
    _choose_pgd(loaded, eps=eps)
    _run_live(qtbot, loaded)
    live = loaded.live
    iterates = [s for s in live.snapshots if s.label != "clean"]
    assert len(iterates) == 11  # steps 0..9 and the result
    assert live.scrubber.maximum() == len(live.snapshots) - 1
    assert live.scrubber.value() == live.scrubber.maximum()
    assert live.curves.n_curves == 4
    # the triplet shows the focused image, its perturbation within eps
    trip = live.triplet
    assert trip.original.image is not None
    assert trip.original.image.shape == (28, 28)
    assert np.abs(trip.delta).max() <= eps + 1e-6
    assert np.abs(trip.delta).max() > 0
    assert trip.perturbation.levels is not None
    assert "%" in trip.clean_text.text()
    assert "%" in trip.adv_text.text()
    classes = ctx.session.dataset.classes
    assert classes[live.items[0].y] in trip.clean_text.text()
    # scrubbing back shows an earlier adversarial image
    last = trip.shown_adv.copy()
    live.scrubber.setValue(1)
    assert not np.allclose(trip.shown_adv, last)
    assert "step 0 / 10" in live.step_label.text()
    live.scrubber.setValue(0)
    assert "clean images" in live.step_label.text()
    np.testing.assert_allclose(trip.delta, 0, atol=1e-6)


def test_fooled_image_says_so(qtbot, loaded, ctx):
    loaded.picker.select_first(8)
    _choose_pgd(loaded, eps=0.1, steps=20)
    _run_live(qtbot, loaded)
    result = loaded.live_box.result
    fooled = np.flatnonzero(result["success"])
    assert fooled.size
    loaded.live.strip._tiles[int(fooled[0])].mousePressEvent(_click())
    assert loaded.live.focus == int(fooled[0])
    text = loaded.live.triplet.verdict.text()
    classes = ctx.session.dataset.classes
    y, pred = int(result["y"][fooled[0]]), int(result["pred_adv"][fooled[0]])
    assert f"fooled: {classes[y]} → {classes[pred]}" in text
    assert "done" in loaded.status.text()


def test_save_writes_files_into_a_workspace_run(qtbot, loaded, ctx):
    loaded.picker.select_first(2)
    _choose_pgd(loaded, steps=3)
    assert not loaded.save_button.isEnabled()
    _run_live(qtbot, loaded)
    loaded.save_button.click()
    folder = loaded.live_box.saved_dir
    assert folder is not None
    assert folder.parent.parent == ctx.workspace.path
    assert any(folder.glob("*.png"))
    assert str(folder) in loaded.live_box.save_label.text()


def _endless_attack(model, x, y, *, token, **_kwargs):
    from explorer.core.jobs import Progress, Snapshot

    b = len(y)
    arrays = {"x_adv": x.numpy(), "loss": np.zeros(b, np.float32),
              "probs": np.full((b, 10), 0.1, np.float32), "success": np.zeros(b, bool)}
    i = 0
    while True:  # stops only when the user cancels
        token.check()
        yield Snapshot(i, 10_000, arrays, "pgd")
        yield Progress(i, 10_000, "pgd")
        i += 1
        token._event.wait(0.005)


def test_cancel_mid_run(qtbot, loaded, ctx, monkeypatch):
    monkeypatch.setattr("explorer.gui.panels.attack_lab.live_box.attack_live",
                        _endless_attack)
    loaded.picker.select_first(2)
    loaded.run_button.click()
    job = loaded.live_box.job
    assert loaded.cancel_button.isEnabled()
    assert not loaded.run_button.isEnabled()
    qtbot.waitUntil(lambda: len(loaded.live.snapshots) > 3, timeout=10_000)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        loaded.cancel_button.click()
    assert loaded.status.text() == "Attack cancelled."
    assert not loaded.cancel_button.isEnabled()
    assert loaded.run_button.isEnabled()
    runs = ctx.workspace.runs(kind="attack")
    assert runs[0].status == "cancelled"


def test_batch_mode_fills_the_figures(qtbot, loaded):
    _choose_pgd(loaded, steps=3, eps=8 / 255)
    loaded.tabs.setCurrentWidget(loaded.batch)
    loaded.batch.n.setValue(64)
    loaded.batch.run_button.click()
    with qtbot.waitSignal(loaded.batch.job.finished, timeout=LIVE_TIMEOUT):
        pass
    labels = loaded.batch.labels
    assert labels["success_rate"].text().endswith("%")
    assert "/255" in labels["mean_linf"].text()
    assert labels["images_per_second"].text().endswith("images/s")
    assert "64 images" in loaded.batch.status.text()


def test_sweep_curve_gets_one_point_per_eps(qtbot, loaded):
    _choose_pgd(loaded, steps=2)
    loaded.sweep.eps_edit.setText("0, 2/255, 8/255")
    loaded.sweep.n.setValue(32)
    loaded.sweep.run_button.click()
    with qtbot.waitSignal(loaded.sweep.job.finished, timeout=LIVE_TIMEOUT):
        pass
    x, y = loaded.sweep.curve.getData()
    np.testing.assert_allclose(x, [0, 2 / 255, 8 / 255])
    assert y[0] >= y[-1]
    assert "clean accuracy" in loaded.sweep.status.text()
    loaded.sweep.eps_edit.setText("0, eight")
    loaded.sweep.run_button.click()
    assert "'eight'" in loaded.sweep.status.text()


def test_drawing_joins_the_selection(qtbot, loaded):
    picker = loaded.picker
    picker.tabs.setCurrentIndex(1)
    canvas = picker.canvas
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(40, 40))
    qtbot.mouseMove(canvas, QPoint(120, 120))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(120, 120))
    assert not canvas.is_empty()
    picker.draw_label.setCurrentIndex(8)
    picker.add_drawing_button.click()
    (item,) = picker.selection()
    assert item.source == "drawing 1"
    assert item.y == 8
    assert item.x.shape == (1, 28, 28)
    assert 0 <= item.x.min() <= item.x.max() <= 1


def _drop(target, path) -> bool:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    action = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(QPoint(10, 10), action, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(10, 10), action, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()


def test_dropped_image_is_converted_and_bad_file_named(loaded, tmp_path):
    from PIL import Image as PILImage

    good = tmp_path / "shoe.png"
    PILImage.new("RGB", (64, 40), (200, 30, 30)).save(good)
    loaded.picker.file_label.setCurrentIndex(7)
    assert _drop(loaded, good)
    (item,) = loaded.picker.selection()
    assert item.x.shape == (1, 28, 28)
    assert item.y == 7
    assert item.source == "shoe.png"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is no picture")
    assert _drop(loaded, bad)
    assert loaded.picker.message.isVisible()
    assert str(bad) in loaded.picker.message.text()
    assert "Traceback" not in loaded.picker.message.text()
    assert len(loaded.picker.selection()) == 1
    assert not _drop(loaded, tmp_path / "notes.txt")


def test_no_model_and_toy_data_give_clear_messages(qtbot, panel, ctx, fmnist):
    assert "Choose a data set" in panel.banner.text()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    assert "Choose a model" in panel.banner.text()
    assert not panel.run_button.isEnabled()
    ctx.session.set_data(data.load("moons", "test"), "moons", "test")
    assert panel.banner.isVisible()
    assert "moons" in panel.banner.text()
    assert "toy" in panel.banner.text()
    assert panel.picker.grid.captions == []
    assert not panel.picker.add_file("anything.png")
    assert "anything.png" in panel.picker.message.text()


def test_demo_finishes_with_the_last_step_shown(qtbot, panel):
    with qtbot.waitSignal(panel.demo_finished, timeout=60_000):
        panel.run_demo()
    live = panel.live
    assert len(live.items) == 8
    assert live.scrubber.value() == live.scrubber.maximum() > 0
    assert live.triplet.adversarial.image is not None
    assert panel.attack_form.values()["eps"] == pytest.approx(0.1)


@pytest.mark.slow
def test_screenshot_of_the_attack_lab(tmp_path):
    out = tmp_path / "attack.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "EXPLORER_HOME": str(tmp_path / "home"),
           "EXPLORER_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "gui", "--screenshot", str(out),
         "--panel", "attack"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    from PIL import Image as PILImage

    with PILImage.open(out) as img:
        assert img.size == (1280, 800)
