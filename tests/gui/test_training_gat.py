"""The Training page offers GAT: its form (tasks, weighting, ...) appears
from the registry, and a few-image run trains with it and records its
choices."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt


@pytest.fixture
def panel(one_thread, training_page):
    return training_page


def _tiny(panel, arch: str = "mlp", arch_values=None) -> None:
    panel.form.arch_combo.setCurrentText(arch)
    panel.form.arch_form.set_values(arch_values or {"hidden": 16, "depth": 1})
    panel.form.general.set_values({"epochs": 1, "batch_size": 64, "eval_n": 32,
                                   "eval_steps": 1, "train_images": 96})


def test_gat_is_chosen_with_its_tasks_and_trains_on_few_images(qtbot, ctx, panel):
    combo = panel.form.defense_combo
    combo.setCurrentIndex(combo.findData("gat"))
    assert "MGDA" in panel.form.description.text()
    form = panel.form.defense_form
    tasks = form.editor("tasks")
    tasks.setCurrentIndex(tasks.findText("rotation+jigsaw"))
    assert form.values()["weighting"] == "mgda"
    form.editor("steps").setValue(1)
    _tiny(panel)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.handle.finished, timeout=90000):
        pass
    run = ctx.workspace.get(panel.run_id)
    assert run.status == "finished"
    assert (run.config["defense"], run.config["limit_train"]) == ("gat", 96)
    assert run.config["params"]["tasks"] == "rotation+jigsaw"
    assert (ctx.workspace.run_dir(panel.run_id) / "best.safetensors").exists()
