"""The Training panel: start, stop, resume, alarms, the run list, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from explorer.core import data
from explorer.core.defenses import alarms
from explorer.gui.panels.training import panel as training
from explorer.gui.panels.training.panel import TrainingPanel

TINY = {"epochs": 2, "batch_size": 64, "eval_n": 64, "eval_steps": 2}



@pytest.fixture
def panel(training_page):
    training_page.form.choose("small-cnn", {"width": 4, "dense": 16}, "fast-at", {},
                              TINY)
    return training_page


def _run(qtbot, panel, limit=256):
    panel.start_training(limit_train=limit)
    handle = panel.handle
    # Generous: the first run of a process also imports torch._dynamo (first
    # optimizer), several seconds on a busy 2-core machine.
    with qtbot.waitSignal(handle.finished, timeout=90000):
        pass
    return handle


def test_a_tiny_run_draws_its_curves_and_is_listed(qtbot, ctx, panel):
    handle = _run(qtbot, panel)
    assert handle.state == "done"
    qtbot.waitUntil(lambda: panel.curves.points("test_robust_acc") == 2)
    assert panel.curves.points("batch_loss") > 0
    assert panel.curves.points("train_loss") == 2
    assert panel.curves.acc_curves["test_clean_acc"].xData is not None
    qtbot.waitUntil(lambda: panel.strip.epoch == 2)  # the last epoch's examples
    assert len(panel.strip.captions) == 8
    true_name = panel.strip.captions[0].split(" → ")[0]
    assert true_name in panel.ctx.session.dataset.classes
    run = ctx.workspace.get(panel.run_id)
    assert run.status == "finished"
    assert run.config["limit_train"] == 256
    assert run.config["augment"] == "none"  # "auto" on 1×28×28 Fashion-MNIST
    assert panel.runs.ids() == [panel.run_id]
    assert panel.runs.status(panel.run_id) == "finished"
    assert (ctx.workspace.run_dir(panel.run_id) / "best.safetensors").exists()


def test_stop_keeps_the_checkpoint_and_resume_finishes_the_run(qtbot, ctx, panel):
    panel.form.choose("small-cnn", {"width": 4}, "fast-at", {}, {"epochs": 3})
    panel.start_training(limit_train=256)
    handle = panel.handle
    # MainWindow.closeEvent asks about the runner's active jobs by name.
    assert "training fast-at" in [h.name for h in ctx.runner.active()]
    with qtbot.waitSignal(panel.epoch_shown, timeout=30000):
        pass
    with qtbot.waitSignal(handle.finished, timeout=20000):
        panel.stop()
    assert handle.state == "cancelled"
    run_id = panel.run_id
    assert ctx.workspace.get(run_id).status == "cancelled"
    assert (ctx.workspace.run_dir(run_id) / "last.pt").exists()
    assert panel.runs.status(run_id) == "cancelled"
    panel.tabs.setCurrentIndex(1)
    panel.runs.select([run_id])
    assert panel.resume_button.isEnabled()
    panel.resume_selected()
    assert panel.curves.points("test_robust_acc") >= 1  # the earlier epochs
    with qtbot.waitSignal(panel.handle.finished, timeout=30000):
        pass
    run = ctx.workspace.get(run_id)
    assert run.status == "finished"
    assert run.summary["epochs"] == 3
    qtbot.waitUntil(lambda: panel.curves.points("test_robust_acc") == 3)


def test_the_best_epoch_is_chosen_on_validation_and_drawn_apart(qtbot, ctx, panel,
                                                               monkeypatch):
    """The validation share typed in the form holds out that many training
    images; the curves draw validation and test apart, the star sits on the
    trainer's best epoch, the alarms get the validation figures and the
    run list says what chose the best epoch."""
    checked: list[list[dict]] = []
    check = alarms.check
    monkeypatch.setattr(alarms, "check", lambda history, kinds: checked.append(
        [dict(row) for row in history]) or check(history, kinds=kinds))
    spin = panel.form.general.editor("val_fraction")
    spin.clear()
    qtbot.keyClicks(spin, "0.25")
    spin.interpretText()
    assert panel.form.config().val_fraction == 0.25
    _run(qtbot, panel)
    qtbot.waitUntil(lambda: panel.curves.points("val_robust_acc") == 2)
    assert panel.curves.points("test_robust_acc") == 2
    run = ctx.workspace.get(panel.run_id)
    assert (run.config["val_fraction"], run.config["selected_on"]) == (
        0.25, "validation")
    assert (run.summary["selected_on"], run.summary["val_n"]) == ("validation", 64)
    assert "64 training images held out for validation, 192" in (
        panel.split_note.text())
    legend = [label.text for _, label in panel.curves.acc_plot.legend.items]
    assert {"val robust", "test robust", "best (on validation)"} <= set(legend)
    best = run.summary["best_epoch"]
    assert panel.curves.best_epoch() == best  # the star is the trainer's choice
    val = dict(ctx.workspace.metrics(panel.run_id, "val_robust_acc"))
    star_x, star_y = panel.curves.best_marker.getData()
    assert (list(star_x), list(star_y)) == ([best], [pytest.approx(100 * val[best])])
    assert run.summary["best_val_robust_acc"] == pytest.approx(val[best])
    assert f"best epoch {best}, chosen on validation (64 held-out images)" in (
        panel.status.text())
    # the alarms were asked about each finished epoch, with its validation figures
    assert [len(h) for h in checked] == [1, 2]
    assert [row["val_robust_acc"] for row in checked[-1]] == [val[1], val[2]]
    panel.runs.refresh(ctx.workspace)
    row = panel.runs.ids().index(panel.run_id)
    column = panel.runs.table.columnCount() - 1
    assert panel.runs.table.item(row, column).text() == f"{best} (on validation)"
    later = TrainingPanel(ctx)  # the next launch reads the same settings
    qtbot.addWidget(later)
    assert later.form.config().val_fraction == 0.25


def test_without_a_split_the_last_epoch_is_kept_and_said(qtbot, ctx, panel):
    panel.form.general.set_values({"val_fraction": 0.0, "epochs": 1})
    _run(qtbot, panel, limit=128)
    qtbot.waitUntil(lambda: panel.curves.points("test_robust_acc") == 1)
    assert panel.curves.points("val_robust_acc") == 0
    assert panel.curves.best_epoch() is None
    legend = [label.text for _, label in panel.curves.acc_plot.legend.items]
    assert "test robust" in legend
    assert "val robust" not in legend
    assert "no validation split" in panel.status.text()
    assert "No validation split" in panel.split_note.text()
    assert ctx.workspace.get(panel.run_id).config["selected_on"] == "last"
    row = panel.runs.ids().index(panel.run_id)
    column = panel.runs.table.columnCount() - 1
    assert panel.runs.table.item(row, column).text() == "1 (last epoch, no split)"


def test_a_split_that_leaves_nothing_to_train_on_is_named(qtbot, ctx, panel):
    panel.start_training(limit_train=1)  # one image: the split takes it
    handle = panel.handle
    with qtbot.waitSignal(handle.finished, timeout=30000):
        pass
    assert handle.state == "failed"
    assert ("val_fraction 0.1 holds out 1 of the 1 training images and leaves "
            "none to train on") in panel.status.text()


def test_alarm_banner_and_use_best_checkpoint(qtbot, ctx, panel, monkeypatch):
    fake = alarms.Alarm("catastrophic", 2, "Catastrophic overfitting at epoch 2",
                        "Robust accuracy collapsed. The best checkpoint from "
                        "epoch 1 is kept.", 1)
    monkeypatch.setattr(alarms, "check", lambda history, kinds: fake
                        if len(history) >= 2 and fake.kind in kinds else None)
    _run(qtbot, panel)  # Fast-AT: single-step, so catastrophic is watched for
    assert not panel.alarm.isHidden()
    assert "Catastrophic" in panel.alarm.title.text()
    assert "Wong et al. 2020" in panel.alarm.toolTip()
    assert panel.alarm.button.text() == "Use best checkpoint (epoch 1)"
    assert panel.alarm.button.isEnabled()
    with qtbot.waitSignal(ctx.session.model_changed, timeout=10000):
        panel.alarm.button.click()
    assert ctx.session.model is not None
    assert ctx.session.model.meta.arch == "small-cnn"


def test_overlaying_two_runs_draws_two_curves(qtbot, panel):
    panel.form.choose("mlp", {"hidden": 16, "depth": 1}, "standard", {},
                      {"epochs": 1})
    first = _run(qtbot, panel, limit=128)
    first_id = panel.run_id
    _run(qtbot, panel, limit=128)
    assert first.state == "done"
    assert set(panel.runs.ids()) == {first_id, panel.run_id}
    panel.runs.select(panel.runs.ids())
    assert panel.runs.drawn() == 2


def test_the_augmentation_combo_fills_the_config_and_is_remembered(qtbot, ctx,
                                                                    panel):
    combo = panel.form.general.editor("augment")
    assert combo.currentData() == "auto"
    assert [combo.itemData(i) for i in range(combo.count())] == [
        "auto", "none", "crop-flip", "crop", "flip"]
    assert "auto = crop-flip for 32×32 colour sets" in combo.toolTip()
    assert panel.form.config().augment == "auto"
    combo.setCurrentIndex(combo.findData("crop-flip"))
    assert panel.form.config().augment == "crop-flip"
    later = TrainingPanel(ctx)  # the next launch reads the same settings
    qtbot.addWidget(later)
    assert later.form.general.editor("augment").currentData() == "crop-flip"
    assert later.form.config().augment == "crop-flip"


def test_a_run_records_what_auto_augmentation_means_for_its_data(qtbot, ctx,
                                                                  panel,
                                                                  monkeypatch):
    import dataclasses

    import torch

    from explorer.core.data.base import ArrayDataset

    launched = []
    monkeypatch.setattr(panel, "_launch", lambda config, recorder, resume:
                        launched.append((config, recorder)))
    info = dataclasses.replace(data.info("fashion-mnist-mini"), name="colour",
                               shape=(3, 32, 32))
    colour = ArrayDataset(torch.zeros(4, 3, 32, 32, dtype=torch.uint8),
                          torch.arange(4), info.classes, info)
    ctx.session.set_data(colour, "colour", "train")
    panel.start_training(limit_train=4)
    (config, recorder), = launched
    assert config.augment == "crop-flip"
    assert ctx.workspace.get(recorder.run_id).config["augment"] == "crop-flip"


def test_a_toy_set_gives_a_clear_message(qtbot, ctx, panel):
    ctx.session.set_data(data.load("moons", "test"), "moons", "test")
    assert not panel.banner.isHidden()
    assert "2-D toy set" in panel.banner.text()
    panel.start_button.click()
    assert panel.handle is None
    assert "2-D toy set" in panel.status.text()


def test_run_demo_finishes(qtbot, ctx, monkeypatch):
    # The real demo (the form's defaults: 8 epochs on 6,000 images) runs in
    # the screenshot test.
    monkeypatch.setattr(training, "DEMO_GENERAL",
                        {"epochs": 2, "eval_n": 20, "train_images": 100})
    p = TrainingPanel(ctx)
    qtbot.addWidget(p)
    with qtbot.waitSignal(p.demo_finished, timeout=60000):
        p.run_demo()
    assert p.curves.points("test_robust_acc") == 2
    config = ctx.workspace.get(p.run_id).config
    assert config["limit_train"] == 100
    assert (config["defense"], config["schedule"]) == ("fast-at", "cyclic")
    qtbot.waitUntil(lambda: p.strip.epoch == 2)


def test_screenshot_of_the_training_panel(qtbot, loaded_window, tmp_path,
                                         monkeypatch):
    """``explorer gui --screenshot --panel training``'s path in this process:
    the demo runs (shrunk here; the docs' screenshot runs the whole default,
    8 epochs on 6,000 images), then the 1280×800 window is saved."""
    from PySide6.QtGui import QImage

    from explorer.gui.app import _Screenshot

    monkeypatch.setattr(training, "DEMO_GENERAL",
                        {"epochs": 1, "eval_n": 20, "train_images": 200})
    window = loaded_window(workspace=str(tmp_path / "ws"))
    window.resize(1280, 800)
    out = tmp_path / "training.png"
    shot = _Screenshot(window, "training", out)
    shot.start()
    qtbot.waitUntil(out.exists, timeout=120_000)
    assert shot.error is None
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)
    panel = window.panels["training"]
    assert panel.curves.points("test_robust_acc") == 1  # the demo ran, drawn


@pytest.mark.slow
def test_the_app_and_the_cli_train_on_one_workspace(qtbot, ctx, panel):
    """A CLI run started while the panel trains: both finish, both listed."""
    env = dict(os.environ, EXPLORER_THREADS="1")
    cli = subprocess.Popen(
        [sys.executable, "-m", "explorer", "--workspace", str(ctx.workspace.path),
         "train", "--defense", "standard", "--arch", "mlp", "--hidden", "32",
         "--depth", "1", "--limit-train", "512", "--epochs", "2", "--eval-n", "64",
         "--eval-steps", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        handle = _run(qtbot, panel)
        out, err = cli.communicate(timeout=240)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert handle.state == "done"
    assert cli.returncode == 0, err
    cli_run = json.loads(out.strip().splitlines()[-1])["run_id"]
    panel.refresh_runs()
    assert set(panel.runs.ids()) == {panel.run_id, cli_run}
    assert panel.runs.status(cli_run) == "finished"
    assert panel.runs.status(panel.run_id) == "finished"
