"""The Training page offers single-norm l2/l1 PGD-AT and the MNG-AC ablation
switches through the defense's own parameter form."""

from __future__ import annotations

import pytest

from explorer.gui.panels.training.panel import TrainingPanel

TINY = {"epochs": 1, "batch_size": 32, "eval_n": 16, "eval_steps": 1}


@pytest.fixture
def panel(qtbot, ctx, fmnist):
    p = TrainingPanel(ctx)
    qtbot.addWidget(p)
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    p.form.choose("mlp", {"hidden": 16, "depth": 1}, "standard", {}, TINY)
    yield p
    if p.handle is not None:
        with qtbot.waitSignal(p.handle.finished, timeout=20000):
            p.stop()


def _pick(form, name: str) -> None:
    form.defense_combo.setCurrentIndex(form.defense_combo.findData(name))


def test_l2_pgd_at_form_shows_its_budget_and_trains(qtbot, ctx, panel):
    form = panel.form
    _pick(form, "pgd-at-l2")
    assert form.defense_combo.currentText() == "PGD adversarial training, l2"
    assert "l2 ball" in form.description.text()
    assert form.defense_form.editor("eps_l2").value() == pytest.approx(1.5)
    form.defense_form.editor("steps").setValue(1)
    panel.start_training(limit_train=64)
    handle = panel.handle
    with qtbot.waitSignal(handle.finished, timeout=90000):
        pass
    assert handle.state == "done"
    qtbot.waitUntil(lambda: panel.curves.points("train_loss") == 1)
    run = ctx.workspace.get(panel.run_id)
    assert run.config["defense"] == "pgd-at-l2"
    assert run.config["params"]["eps_l2"] == pytest.approx(1.5)
    assert run.config["params"]["steps"] == 1


def test_mng_ac_switches_are_checkboxes_and_mng_without_ac_is_named(panel):
    form = panel.form
    _pick(form, "mng-ac")
    ac, mng = form.defense_form.editor("ac"), form.defense_form.editor("mng")
    assert ac.isChecked()  # the full method by default
    assert mng.isChecked()
    ac.setChecked(False)
    panel.start_training(limit_train=64)
    assert panel.handle is None  # nothing started
    assert "mng needs ac" in panel.status.text()
    mng.setChecked(False)  # SAT
    assert form.config().params["ac"] is False
    assert form.config().params["mng"] is False
