"""The Training page's "start from" choice: fresh weights, or fine-tuning the
model on the Data & Model page; its run and best.pt2 on the Evaluate page."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

from explorer.core import data, models
from explorer.core.models import exported
from explorer.gui.panels.evaluate.model_checklist import ModelChecklist
from explorer.gui.panels.training.form import FRESH, SESSION
from explorer.gui.panels.training.panel import TrainingPanel

BUILTIN = "fmnist-cnn-standard"
TINY = {"epochs": 1, "batch_size": 16, "eval_n": 16, "eval_steps": 1,
        "schedule": "constant"}


@pytest.fixture
def panel(qtbot, ctx):
    p = TrainingPanel(ctx)
    qtbot.addWidget(p)
    ctx.session.set_data(data.load("fashion-mnist-mini", "test"),
                         "fashion-mnist-mini", "test")
    p.form.choose("mlp", {"hidden": 8, "depth": 1}, "standard", {}, TINY)
    yield p
    if p.handle is not None:
        with qtbot.waitSignal(p.handle.finished, timeout=20000):
            p.stop()


def _session_item_enabled(form) -> bool:
    return form.start_combo.model().item(1).isEnabled()


def _session_tip(form) -> str:
    return str(form.start_combo.itemData(1, Qt.ItemDataRole.ToolTipRole))


def test_the_choice_follows_the_session_model(ctx, panel):
    form = panel.form
    assert form.start() == FRESH
    assert not _session_item_enabled(form)  # no model loaded yet
    assert "no model is loaded" in _session_tip(form)
    ctx.session.set_model(models.create("mlp", hidden=8, depth=1), "made here")
    assert not _session_item_enabled(form)  # nothing to read it again from
    assert "not loaded from a file or a built-in name" in _session_tip(form)
    assert "not loaded from a file" in form.start_combo.toolTip()

    ctx.session.set_model(models.load_builtin(BUILTIN), BUILTIN)
    assert _session_item_enabled(form)
    form.choose_start(SESSION)
    assert form.start() == SESSION
    assert not form.arch_combo.isEnabled()  # the loaded model brings its own
    assert form.arch_combo.isHidden()
    assert not form.start_note.isHidden()
    assert "continues from fmnist-cnn-standard, a small-cnn" in form.start_note.text()
    config = form.config()
    assert (config.init_from, config.init_arch) == (BUILTIN, None)
    assert config.arch == "small-cnn"
    assert BUILTIN in form.start_combo.toolTip()

    ctx.session.set_model(None, "")  # unloaded: back to fresh weights
    assert form.start() == FRESH
    assert form.arch_combo.isEnabled()
    assert not form.arch_combo.isHidden()
    assert form.start_note.isHidden()
    config = form.config()
    assert (config.init_from, config.arch) == (None, "mlp")


def test_fine_tuning_a_pt2_from_the_page_writes_best_pt2_listed_for_evaluation(
        qtbot, ctx, panel, tmp_path):
    torch.manual_seed(0)
    net = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1)
    path = exported.export(net, tmp_path / "tiny.pt2")
    ctx.session.set_model(models.load(path), path.name)
    panel.form.choose_start(SESSION)
    panel.start_training(limit_train=32)
    handle = panel.handle
    with qtbot.waitSignal(handle.finished, timeout=90000):
        pass
    assert handle.state == "done"
    run = ctx.workspace.get(panel.run_id)
    assert run.status == "finished"
    assert run.config["init_from"] == str(path)
    assert run.title.endswith("from tiny.pt2")
    best = ctx.workspace.run_dir(run.id) / "best.pt2"
    assert best.exists()
    checklist = ModelChecklist(ctx.workspace)
    qtbot.addWidget(checklist)
    sources = {c.name: c.source for c in checklist.choices()}
    assert sources[f"run {run.id}"] == str(best)
    assert models.load(best).meta.training["init_from"] == str(path)
