"""A fresh Training page offers a quick first run that visibly learns."""

from __future__ import annotations

import pytest

from explorer.core import models
from explorer.core.defenses import TrainingConfig, alarms
from explorer.core.defenses.alarm_scope import scope
from explorer.core.launch_args import train_argv
from explorer.gui.panels.training import panel as training
from explorer.gui.panels.training.panel import TrainingPanel

QUICK = {"epochs": 8, "batch_size": 50, "optimizer": "adam", "lr": 0.005,
         "schedule": "cyclic", "eval_n": 200, "eval_steps": 10, "eval_eps": 0.1,
         "train_images": 6000, "val_fraction": 0.1, "augment": "auto", "seed": 0}


def test_a_fresh_page_shows_the_quick_run_and_it_is_a_valid_run(training_page):
    form = training_page.form
    assert form.arch_combo.currentText() == "small-cnn"
    assert form.arch_form.values() == {p.name: p.default
                                       for p in models.spec("small-cnn")}
    assert form.defense_combo.currentText() == "Fast adversarial training (FGSM-RS)"
    assert form.defense_form.values() == {"eps": 0.1, "alpha_ratio": 1.25}
    assert form.general.values() == pytest.approx(QUICK)
    # what the widgets show, and how to get back to a full-size run
    assert form.general.editor("optimizer").currentText() == "adam"
    assert form.general.editor("schedule").currentText() == "cyclic"
    assert form.general.editor("train_images").text() == "6000"
    assert "quick first run" in form.quick_note.text()
    assert not form.quick_note.isHidden()
    for name in ("epochs", "eval_n", "train_images"):
        assert "raise it for a real one" in form.general.editor(name).toolTip()
    config = training_page.current_config()
    assert config == TrainingConfig(
        defense="fast-at", params={"eps": 0.1, "alpha_ratio": 1.25}, epochs=8,
        batch_size=50, optimizer="adam", lr=0.005, schedule="cyclic",
        eval_n=200, eval_steps=10, val_fraction=0.1, limit_train=6000,
        augment="none", data="fashion-mnist-mini", arch="small-cnn",
        arch_params=config.arch_params)
    assert train_argv(config)[:3] == ["train", "--defense", "fast-at"]
    # single-step adversarial training: both overfitting alarms are watched
    assert scope(config.defense, config.params).kinds == alarms.KINDS


def test_remembered_choices_still_win_over_the_defaults(qtbot, ctx, fmnist):
    ctx.settings.setValue(training.VAL_KEY, 0.2)
    ctx.settings.setValue(training.AUGMENT_KEY, "flip")
    page = TrainingPanel(ctx)
    qtbot.addWidget(page)
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    general = page.form.general.values()
    assert (general["val_fraction"], general["augment"]) == (0.2, "flip")
    assert general["epochs"] == QUICK["epochs"]
    assert page.current_config().augment == "flip"
