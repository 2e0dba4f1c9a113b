"""The Training page's fine-tune choices: what trains (every weight, or the
classifier head only: a linear probe) and a fresh head, offered only when
the run starts from the session's model; the run records them."""

from __future__ import annotations

import torch
from PySide6.QtCore import QPoint, Qt

from explorer.core import models
from explorer.core.models import exported
from explorer.core.training import checkpoint
from explorer.gui.panels.training.form import FRESH, SESSION

BUILTIN = "fmnist-cnn-standard"
TINY = {"epochs": 1, "batch_size": 16, "eval_n": 16, "eval_steps": 1,
        "schedule": "constant", "val_fraction": 0.0}


def _click(qtbot, box) -> None:
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton,
                     pos=QPoint(8, box.height() // 2))


def _pick(combo, key: str) -> None:
    """Choose the item whose data is ``key`` as a user would (activated)."""
    index = combo.findData(key)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def test_a_linear_probe_chosen_on_the_page_trains_the_head_only(qtbot, ctx,
                                                                 training_page):
    page, form = training_page, training_page.form
    form.choose("mlp", {"hidden": 8, "depth": 1}, "standard", {}, TINY)
    assert form.start() == FRESH
    assert not form.freeze_combo.isEnabled()  # nothing to fine-tune yet
    assert not form.new_head.isEnabled()
    assert "fine-tuning only" in form.freeze_combo.toolTip()
    ctx.session.set_model(models.load_builtin(BUILTIN), BUILTIN)
    _pick(form.start_combo, SESSION)
    assert form.freeze_combo.isEnabled()
    assert form.new_head.isEnabled()
    assert form.freeze() == "none"  # full fine-tuning unless asked
    _pick(form.freeze_combo, "features")
    _click(qtbot, form.new_head)
    assert form.new_head.isChecked()
    page.start_training(limit_train=32)
    handle = page.handle
    with qtbot.waitSignal(handle.finished, timeout=90_000):
        pass
    assert handle.state == "done"
    run = ctx.workspace.get(page.run_id)
    assert (run.config["freeze"], run.config["new_head"]) == ("features", True)
    assert run.config["init_from"] == BUILTIN
    assert run.title.endswith("linear probe from fmnist-cnn-standard")
    trained = checkpoint.load(ctx.workspace.run_dir(run.id) / "last.pt")["model"]
    start = models.load_builtin(BUILTIN).state_dict()
    changed = {k for k, v in start.items() if not torch.equal(v, trained[k])}
    assert changed == {"head.weight", "head.bias"}

    _pick(form.start_combo, FRESH)  # fresh weights: the choices step aside
    assert not form.freeze_combo.isEnabled()
    config = form.config()
    assert (config.freeze, config.new_head) == ("none", False)


def test_a_program_cannot_be_probed_and_the_status_line_says_why(
        qtbot, ctx, training_page, tmp_path):
    page, form = training_page, training_page.form
    form.choose("mlp", {"hidden": 8, "depth": 1}, "standard", {}, TINY)
    net = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1).eval()
    path = exported.export(net, tmp_path / "tiny.pt2")
    ctx.session.set_model(models.load(path), path.name)
    _pick(form.start_combo, SESSION)
    _pick(form.freeze_combo, "features")
    page.start_training(limit_train=32)
    assert page.handle is None  # nothing started
    assert page.status.text().startswith("linear probe or new head: ")
    assert page.status.text().endswith("train every weight, without a new head")
    assert ("tiny.pt2 is a torch.export program, whose classifier head cannot "
            "be identified") in page.status.text()
    assert ctx.workspace.runs(kind="train") == []
    _pick(form.freeze_combo, "none")  # a full fine-tune of it is fine
    assert form.config().freeze == "none"
