"""The Training page's Speed group: mixed precision and torch.compile."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

from explorer.core.training import checkpoint

TINY = {"epochs": 1, "batch_size": 64, "eval_n": 32, "eval_steps": 2}


@pytest.fixture
def panel(training_page):
    training_page.form.choose("small-cnn", {"width": 4, "dense": 16}, "fast-at", {},
                              TINY)
    return training_page


def test_the_speed_group_offers_amp_and_compile(panel):
    form = panel.form
    combo = form.amp_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["off", "bf16", "fp16"]
    assert form.config().amp == "off"
    assert form.config().compile is False
    fp16 = combo.model().item(combo.findData("fp16"))
    assert fp16.isEnabled() == torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in combo.itemData(combo.findData("fp16"),
                                               Qt.ItemDataRole.ToolTipRole)
    assert "float32" in combo.toolTip()
    combo.setCurrentIndex(combo.findData("bf16"))
    form.compile_box.click()
    config = form.config()
    assert (config.amp, config.compile) == ("bf16", True)


def test_a_bf16_run_is_recorded_with_its_precision(qtbot, ctx, panel):
    panel.form.amp_combo.setCurrentIndex(panel.form.amp_combo.findData("bf16"))
    panel.start_training(limit_train=128)
    handle = panel.handle
    with qtbot.waitSignal(handle.finished, timeout=90_000):
        pass
    assert handle.state == "done"
    run = ctx.workspace.get(panel.run_id)
    assert run.status == "finished"
    assert (run.config["amp"], run.config["compile"]) == ("bf16", False)
    last = checkpoint.load(ctx.workspace.run_dir(panel.run_id) / "last.pt")
    assert last["config"]["amp"] == "bf16"
    qtbot.waitUntil(lambda: panel.curves.points("train_loss") == 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed on CUDA")
def test_fp16_on_a_cpu_session_is_named_and_nothing_starts(qtbot, ctx, panel):
    # The item is disabled here; set programmatically, the page still refuses.
    panel.form.amp_combo.setCurrentIndex(panel.form.amp_combo.findData("fp16"))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert panel.handle is None
    assert ("mixed precision fp16 needs a CUDA GPU (float16 with loss scaling); "
            "this run is on cpu: choose mixed precision bf16 or off"
            ) in panel.status.text()
    assert ctx.workspace.runs(kind="train") == []
