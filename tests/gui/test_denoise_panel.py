"""The Denoiser Lab, driven like a user: ObsAtk rows, scrubber, rho, training."""

from __future__ import annotations

import pytest
from gui_helpers import assert_apart, assert_shape_kept

from explorer.core import data, denoise, models
from explorer.gui.panels.denoise.panel import PICKER_IMAGES, DenoiserLabPanel
from explorer.gui.panels.denoise.rho_curve import SWEEP_RMS
from explorer.gui.panels.denoise.rows import COLUMNS

TIMEOUT = 30_000



@pytest.fixture
def tiny_file(tmp_path):
    """A small fresh denoiser saved as a user would have it."""
    model = denoise.create("dncnn", depth=3, width=4, dataset="fashion-mnist-mini")
    return denoise.save(model, tmp_path / "tiny-dncnn.safetensors")


@pytest.fixture
def panel(qtbot, ctx, fmnist):
    p = DenoiserLabPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 760)
    p.show()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    p.denoisers.set_checked([])  # only the denoisers a test adds
    yield p
    if p.running:
        with qtbot.waitSignal(p.ctx.runner.jobs_changed, timeout=TIMEOUT):
            p.cancel()


@pytest.mark.slow  # 3-9 s on 2 busy cores (the live attack, then the sweep)
def test_obsatk_rows_scrubber_and_sweep(qtbot, panel, tiny_file):
    assert panel.denoisers.add_file(str(tiny_file))
    assert panel.denoisers.checked() == ["tiny-dncnn"]
    for index in (0, 3):
        panel.picker.toggle(index)
    panel.form.choose("gaussian", 0.1, 4 / 255, 5)
    panel.sweep_n = 8
    with qtbot.waitSignal(panel.sweep_finished, timeout=TIMEOUT):
        panel.run_button.click()
    rows = panel.rows
    captions = rows.captions("tiny-dncnn")
    assert len(captions) == len(COLUMNS)
    assert all("PSNR" in c and "SSIM" in c for c in captions[1:5])
    assert "max" in captions[5]  # the error map's scale
    assert rows.step_label.text() == "best"
    denoised, attacked = rows.caption_psnr("tiny-dncnn", 2), rows.caption_psnr(
        "tiny-dncnn", 4)
    assert attacked < denoised
    # The table compares ObsAtk with random noise of the same norm.
    assert panel.table.cell_text(0, 0) == "tiny-dncnn"
    assert float(panel.table.cell_text(0, 4)) < float(panel.table.cell_text(0, 3))
    # ... and how much of each direction passes through: the untrained tiny
    # DnCNN is the identity, so all of it (the built-in's are in the core tests)
    gains = [float(g) for g in panel.table.cell_text(0, 5).split(" / ")]
    assert gains == pytest.approx([1.0, 1.0], abs=0.01)
    # Step 0 is the unperturbed observation: attacked == denoised.
    with qtbot.waitSignal(rows.repainted, timeout=TIMEOUT):
        rows.scrubber.setValue(0)
    assert rows.step_label.text() == "step 0/5"
    assert rows.caption_psnr("tiny-dncnn", 4) == denoised
    with qtbot.waitSignal(rows.repainted, timeout=TIMEOUT):
        rows.image.setValue(2)  # the second chosen image
    assert rows.caption_psnr("tiny-dncnn", 2) != denoised
    assert panel.curve.filled("psnr/tiny-dncnn") == len(SWEEP_RMS)
    assert panel.curve.filled("psnr_random/tiny-dncnn") == len(SWEEP_RMS)
    assert panel.run_button.isEnabled()


def test_rho_slider_shows_k_over_255_and_rho(panel):
    panel.form.set_rms(4 / 255)
    text = panel.form.budget.text()
    assert "4/255" in text
    assert "ρ = 0.439" in text  # 4/255 · sqrt(28·28)
    assert panel.curve.marker.value() == pytest.approx(4.0)
    panel.form.slider.setValue(panel.form.slider.maximum())
    assert "16/255" in panel.form.budget.text()
    assert "ρ = 1.76" in panel.form.budget.text()
    assert panel.form.rho() == pytest.approx(16 / 255 * 28)


def test_the_picker_shows_square_thumbnails_and_the_run_button(qtbot, panel):
    """At about 1280×800 the image grid is not squeezed flat (the left column
    grows with its content), captions do not touch, and Run stays in view."""
    grid = panel.picker.grid
    shown = [t for t in grid._tiles if t.isVisible()]
    assert len(shown) == PICKER_IMAGES
    qtbot.waitUntil(lambda: shown[0].picture.image_rect().height() >= grid.tile)
    for tile in shown:
        assert_shape_kept(tile.picture, 28, 28)
        assert tile.picture.image_rect().width() >= grid.tile  # full size
    assert_apart([t.caption for t in shown])
    long_names = [t for t in shown if t.caption.is_elided()]
    assert long_names  # "T-shirt/top", "Ankle boot" at 28 px
    assert all(t.caption.toolTip() == t.caption.full_text() for t in long_names)
    run = panel.run_button
    assert run.visibleRegion().boundingRect() == run.rect()


def test_a_classifier_file_is_refused_with_its_reason(panel, tmp_path):
    path = models.save(models.load_builtin("fmnist-cnn-standard"),
                       tmp_path / "classifier.safetensors")
    assert not panel.denoisers.add_file(str(path))
    assert "is a classifier, not a denoiser" in panel.denoisers.message.text()
    assert "classifier" not in panel.denoisers.names()
    assert not panel.denoisers.add_file(str(tmp_path / "missing.safetensors"))
    assert "no such file" in panel.denoisers.message.text()


def test_a_denoiser_for_other_images_says_what_it_expects(panel, tmp_path):
    rgb = denoise.create("dncnn", in_shape=(3, 32, 32), depth=3, width=4)
    path = denoise.save(rgb, tmp_path / "rgb.safetensors")
    assert panel.denoisers.add_file(str(path))
    panel.picker.toggle(0)
    panel.run_button.click()
    assert panel.attack_job is None
    assert panel.status.text().startswith("rgb: image of size 1×28×28")
    assert "3 channel(s) expected" in panel.status.text()


def test_nothing_chosen_and_toy_data_give_clear_messages(panel, ctx, tiny_file):
    panel.run_button.click()
    assert panel.status.text() == "Select at least one image first."
    panel.picker.toggle(0)
    panel.run_button.click()
    assert panel.status.text() == "Check at least one denoiser."
    ctx.session.set_data(data.load("moons", "test"), "moons", "test")
    assert "moons" in panel.banner.text()
    assert "2-D toy set" in panel.banner.text()
    assert not panel.run_button.isEnabled()
    assert panel.picker.grid.captions == []
    assert not panel.train_box.start()
    assert "2-D toy set" in panel.train_box.status.text()


def test_no_built_in_denoisers_is_said(qtbot, ctx, monkeypatch):
    monkeypatch.setattr(denoise, "builtin_names", lambda: [])
    p = DenoiserLabPanel(ctx)
    qtbot.addWidget(p)
    assert p.denoisers.names() == []
    assert "No built-in denoisers" in p.denoisers.message.text()


def test_a_tiny_hat_run_draws_curves_and_is_recorded(qtbot, ctx, panel):
    box = panel.train_box
    panel.tabs.setCurrentIndex(1)
    box.form.choose("dncnn", {"depth": 3, "width": 4, "batch_norm": False},
                    {"method": "hat", "epochs": 1, "limit_train": 64,
                     "batch_size": 32, "eval_n": 16, "eval_steps": 1,
                     "attack_steps": 1})
    with qtbot.waitSignal(box.finished, timeout=TIMEOUT) as outcome:
        assert box.start()
    assert outcome.args == ["done"]
    qtbot.waitUntil(lambda: box.curves.points("test_psnr_attacked") == 1)
    assert box.curves.points("batch_loss") > 0
    assert box.curves.points("train_loss") == 1
    assert box.curves.points("test_psnr_clean") == 1
    assert box.curves.psnr_curves["test_psnr_attacked"].xData is not None
    run = ctx.workspace.get(box.run_id)
    assert run.kind == "train-denoiser"
    assert run.status == "finished"
    assert run.config["method"] == "hat"
    assert run.config["params"]["rho"] == pytest.approx(4 / 255 * 28)
    assert box.runs.count() == 1
    assert "finished" in box.runs.item(0).text()
    best = ctx.workspace.run_dir(box.run_id) / "best.safetensors"
    assert panel.denoisers.add_file(str(best))  # usable on the Attack tab


def _start_then_stop(qtbot, box):
    """A tiny 4-epoch run, stopped once its first loss is drawn."""
    box.form.choose("dncnn", {"depth": 3, "width": 4, "batch_norm": False},
                    {"method": "standard", "epochs": 4, "limit_train": 64,
                     "batch_size": 32, "eval_n": 8, "eval_steps": 1})
    assert box.start()
    qtbot.waitUntil(lambda: box.curves.points("train_loss") >= 1, timeout=TIMEOUT)
    with qtbot.waitSignal(box.finished, timeout=TIMEOUT) as outcome:
        box.stop_button.click()
    assert outcome.args == ["cancelled"]


def test_stop_then_resume_finishes_the_run(qtbot, ctx, panel):
    box = panel.train_box
    _start_then_stop(qtbot, box)
    run_id = box.run_id
    assert ctx.workspace.get(run_id).status == "cancelled"
    assert "Resume" in box.status.text()
    box.runs.item(0).setSelected(True)
    assert box.resume_button.isEnabled()
    with qtbot.waitSignal(box.finished, timeout=TIMEOUT) as outcome:
        box.resume_button.click()
    assert outcome.args == ["done"]
    assert box.run_id == run_id
    assert ctx.workspace.get(run_id).status == "finished"
    qtbot.waitUntil(lambda: box.curves.points("train_loss") == 4)


def test_cancel_stops_a_long_attack(qtbot, panel, tmp_path):
    # Full size and 8 images: 200 steps take seconds, far longer than a cancel.
    path = denoise.save(denoise.create("dncnn"), tmp_path / "tiny-dncnn.safetensors")
    assert panel.denoisers.add_file(str(path))
    panel.picker.select_first(8)
    panel.form.choose("gaussian", 0.1, 4 / 255, 200)
    panel.sweep_check.setChecked(False)
    panel.run_button.click()
    assert panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: len(panel.rows.snapshots["tiny-dncnn"]) > 0,
                    timeout=TIMEOUT)
    # The job's end, not "not running": the state turns cancelled when the
    # worker returns, a moment before the finished signal re-enables Run.
    with qtbot.waitSignal(panel.controls.finished, timeout=TIMEOUT):
        panel.cancel_button.click()
    assert not panel.running
    assert panel.status.text() == "Cancelled."
    assert panel.run_button.isEnabled()
    assert len(panel.rows.snapshots["tiny-dncnn"]) < 50  # 200 steps, every 4th


def test_resume_without_a_checkpoint_says_so(qtbot, ctx, panel):
    box = panel.train_box
    _start_then_stop(qtbot, box)
    run_id = box.run_id
    (ctx.workspace.run_dir(run_id) / "last.pt").unlink()
    box.runs.item(0).setSelected(True)
    box.resume_button.click()
    assert box.status.text() == f"Run {run_id} has no checkpoint to resume from."
    assert not box.running


def test_curves_replace_a_repeated_epoch(qtbot):
    """A resumed run re-reports its unfinished epoch; the history read at
    resume may hold it too: one point per epoch, the newest value."""
    from explorer.gui.panels.denoise.curves import DenoiseCurves

    curves = DenoiseCurves()
    qtbot.addWidget(curves)
    curves.reset(3)
    for step, value in ((1, 0.5), (2, 0.4), (2, 0.3), (3, 0.2)):
        curves.add("train_loss", step, value)
    curves.redraw()
    assert curves.points("train_loss") == 3
    x, y = curves.train_loss.getData()
    assert list(x) == [1, 2, 3]
    assert list(y) == pytest.approx([0.5, 0.3, 0.2])
