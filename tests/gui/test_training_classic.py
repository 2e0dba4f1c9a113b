"""The Training page offers defensive distillation (temperature, teacher) and
ensemble adversarial training (eps, static models), trains with them and
names a static model that does not fit the data."""

from __future__ import annotations

import pytest


@pytest.fixture
def panel(one_thread, training_page):
    return training_page


def _tiny(panel, arch: str = "mlp", arch_values=None) -> None:
    panel.form.arch_combo.setCurrentText(arch)
    panel.form.arch_form.set_values(arch_values or {"hidden": 16, "depth": 1})
    panel.form.general.set_values({"epochs": 1, "batch_size": 64, "eval_n": 32,
                                   "eval_steps": 1})


def test_distillation_is_chosen_with_its_temperature_and_trains(qtbot, ctx, panel):
    combo = panel.form.defense_combo
    assert combo.findData("ensemble-at") >= 0
    combo.setCurrentIndex(combo.findData("distillation"))
    form = panel.form.defense_form
    assert form.editor("temperature").value() == 20.0
    form.editor("temperature").setValue(5.0)
    assert form.values()["teacher"] == "fmnist-cnn-standard"
    _tiny(panel)
    config = panel.form.config()
    assert (config.defense, dict(config.params)) == (
        "distillation", {"temperature": 5.0, "teacher": "fmnist-cnn-standard"})
    panel.start_training(limit_train=128)
    with qtbot.waitSignal(panel.handle.finished, timeout=90000):
        pass
    run = ctx.workspace.get(panel.run_id)
    assert run.status == "finished"
    assert run.config["defense"] == "distillation"
    assert run.config["params"]["temperature"] == 5.0


def test_a_static_model_of_another_shape_is_named(qtbot, ctx, panel, monkeypatch):
    combo = panel.form.defense_combo
    combo.setCurrentIndex(combo.findData("ensemble-at"))
    assert panel.form.defense_form.values()["static"] == "fmnist-cnn-standard"
    _tiny(panel)
    from explorer.core.models import builtin
    real = builtin.load_builtin

    def other_shape(name):  # a built-in made for 3×32×32 images
        model = real(name)
        model.meta.in_shape = (3, 32, 32)
        return model

    monkeypatch.setattr(builtin, "load_builtin", other_shape)
    panel.start_training(limit_train=128)
    handle = panel.handle
    with qtbot.waitSignal(handle.finished, timeout=90000):
        pass
    assert handle.state == "failed"
    assert ("static: built-in model 'fmnist-cnn-standard' takes inputs of shape "
            "(3, 32, 32), but the model being trained takes (1, 28, 28)"
            ) in panel.status.text()
