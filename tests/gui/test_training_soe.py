"""The Training page offers Synergy-of-Experts with its parameters, trains a
tiny run and draws every sub-model's clean and robust accuracy in the method
plot (the share each sub-model answers is reported, not drawn)."""

from __future__ import annotations

import pytest


@pytest.fixture
def panel(one_thread, training_page):
    return training_page


def test_a_soe_run_draws_per_member_curves(qtbot, ctx, panel):
    combo = panel.form.defense_combo
    combo.setCurrentIndex(combo.findData("soe"))
    form = panel.form.defense_form
    assert form.editor("members").value() == 3
    form.editor("members").setValue(2)
    form.editor("steps").setValue(1)
    assert form.editor("posterior_weight").value() == 1.0
    panel.form.arch_combo.setCurrentText("mlp")
    panel.form.arch_form.set_values({"hidden": 16, "depth": 1})
    panel.form.general.set_values({"epochs": 1, "batch_size": 64, "eval_n": 32,
                                   "eval_steps": 1})
    config = panel.form.config()
    assert (config.defense, config.params["members"], config.params["steps"]) == (
        "soe", 2, 1)
    panel.start_training(limit_train=128)
    with qtbot.waitSignal(panel.handle.finished, timeout=90000):
        pass
    run = ctx.workspace.get(panel.run_id)
    assert run.status == "finished"
    curves = panel.curves
    wanted = {f"{part}_member{k}_{fig}_acc" for part in ("val", "test")
              for k in (1, 2) for fig in ("clean", "robust")}
    qtbot.waitUntil(lambda: set(curves.method_curves) == wanted, timeout=10000)
    assert not curves.method_note.isVisible()
    labels = {label.text for _, label in curves.method_plot.legend.items}
    assert {"val member1_robust", "test member2_clean"} <= labels
    for key in wanted:
        x, y = curves.method_curves[key].getData()
        assert list(x) == [1]
        assert 0 <= y[0] <= 100
