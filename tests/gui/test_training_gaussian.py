"""The Training page offers the randomized-smoothing methods: Gaussian noise
augmentation (sigma) and SmoothAdv, and trains with them."""

from __future__ import annotations

import pytest


@pytest.fixture
def panel(one_thread, training_page):
    return training_page


def test_gaussian_is_chosen_with_its_sigma_and_trains(qtbot, ctx, panel):
    combo = panel.form.defense_combo
    assert combo.findData("smoothadv") >= 0
    combo.setCurrentIndex(combo.findData("gaussian"))
    sigma = panel.form.defense_form.editor("sigma")
    assert sigma.value() == 0.25
    sigma.setValue(0.5)
    panel.form.arch_form.set_values({"width": 4, "dense": 16})
    panel.form.general.set_values({"epochs": 1, "batch_size": 64, "eval_n": 32,
                                   "eval_steps": 1})
    config = panel.form.config()
    assert (config.defense, dict(config.params)) == ("gaussian", {"sigma": 0.5})
    panel.start_training(limit_train=128)
    with qtbot.waitSignal(panel.handle.finished, timeout=90000):
        pass
    run = ctx.workspace.get(panel.run_id)
    assert run.status == "finished"
    assert run.config["defense"] == "gaussian"
    assert run.config["params"] == {"sigma": 0.5}
