"""The Training page's NoiLIn checkbox: offered for adversarial methods only,
it wraps the chosen defense and the run records it; bad values are named."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from explorer.core.training import checkpoint

TINY = {"epochs": 1, "batch_size": 64, "eval_n": 32, "eval_steps": 1}


@pytest.fixture
def panel(training_page):
    training_page.form.choose("mlp", {"hidden": 16, "depth": 1}, "standard", {}, TINY)
    return training_page


def _click(qtbot, box) -> None:
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton,
                     pos=QPoint(8, box.height() // 2))


def test_the_checkbox_wraps_trades_and_the_run_records_it(qtbot, ctx, panel):
    box = panel.form.noilin
    assert not box.check.isEnabled()  # standard training: nothing to wrap
    assert "adversarial-training methods only" in box.check.toolTip()
    combo = panel.form.defense_combo
    combo.setCurrentIndex(combo.findData("trades"))
    panel.form.defense_form.set_values({"steps": 1})
    assert box.check.isEnabled()
    assert not box.form.isVisibleTo(panel)
    _click(qtbot, box.check)
    assert box.check.isChecked()
    assert box.form.isVisibleTo(panel)
    box.form.editor("rate").setValue(0.2)
    panel.start_training(limit_train=128)
    handle = panel.handle
    with qtbot.waitSignal(handle.finished, timeout=90000):
        pass
    assert handle.state == "done"
    run = ctx.workspace.get(panel.run_id)
    assert run.config["defense"] == "trades"
    assert run.config["noilin"] == {"rate": 0.2, "growth": 0.05, "rate_max": 0.6}
    assert run.title.startswith("trades + NoiLIn")
    state = checkpoint.load(ctx.workspace.run_dir(panel.run_id) / "last.pt")
    assert state["method"]["rate"] == pytest.approx(0.2)  # one epoch: no drop yet
    # back to a method it cannot wrap: disabled, and the config has none
    combo.setCurrentIndex(combo.findData("standard"))
    assert not box.check.isEnabled()
    assert panel.form.config().noilin is None


def test_a_rate_above_rate_max_is_named(qtbot, panel):
    combo = panel.form.defense_combo
    combo.setCurrentIndex(combo.findData("pgd-at"))
    box = panel.form.noilin
    _click(qtbot, box.check)
    assert box.check.isChecked()
    box.form.set_values({"rate": 0.7, "rate_max": 0.5})
    panel.start_training(limit_train=128)
    assert panel.handle is None
    assert "NoiLIn: rate must be at most rate_max (0.5), got 0.7" in (
        panel.status.text())
