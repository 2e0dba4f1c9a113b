"""Denoiser Lab, "Defend a classifier": pick a classifier and a denoiser, run,
read the five accuracies in the table and the bars."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

from explorer.core import denoise, models
from explorer.core.denoise.jobs import CLASSIFIER_KEYS
from explorer.core.inference import logits_of
from explorer.gui.panels.denoise.attack_form import REAL
from explorer.gui.panels.denoise.panel import DenoiserLabPanel

TIMEOUT = 30_000
N = 12



@pytest.fixture
def panel(qtbot, ctx, fmnist):
    p = DenoiserLabPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 700)
    p.show()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    torch.manual_seed(0)  # a small fresh denoiser: the built-ins take seconds
    p.denoisers.add_model("tiny", denoise.create("dncnn", depth=3, width=4,
                                                 dataset="fashion-mnist-mini"))
    p.form.choose("gaussian", 0.1, 8 / 255, 2)
    p.tabs.setCurrentWidget(p.defense)
    yield p
    box = p.defense
    if box.running:
        with qtbot.waitSignal(box.handle.finished, timeout=TIMEOUT):
            box.cancel()


def _run(qtbot, box):
    with qtbot.waitSignal(box.defense_done, timeout=TIMEOUT):
        qtbot.mouseClick(box.run_button, Qt.MouseButton.LeftButton)
    return box.results


def _clean_acc(model, fmnist, n):
    x, y = fmnist.as_tensors(0, n)
    return (logits_of(model, x).argmax(1) == y).float().mean().item()


def test_a_builtin_classifier_behind_a_denoiser(qtbot, ctx, panel, fmnist):
    box = panel.defense
    names = [box.classifier.itemText(i) for i in range(box.classifier.count())]
    assert names == models.builtin_names()  # no model loaded yet
    assert "tiny" in [box.denoiser.itemText(i) for i in range(box.denoiser.count())]
    assert "RMS 8/255" in box.settings_text.text()
    assert box.figures() == dict.fromkeys(CLASSIFIER_KEYS, "—")
    box.choose("fmnist-cnn-standard", "tiny", N)
    results = _run(qtbot, box)
    shown = box.figures()
    for key in CLASSIFIER_KEYS:
        assert shown[key] == f"{100 * results[f'acc_{key}']:.1f}%"
    assert box.bars.values.tolist() == pytest.approx(
        [100 * results[f"acc_{k}"] for k in CLASSIFIER_KEYS])
    # on the session's first N images, with the Attack tab's budget and steps
    assert results["n"] == N
    assert results["steps"] == 2
    assert results["acc_clean"] == pytest.approx(
        _clean_acc(models.load_builtin("fmnist-cnn-standard"), fmnist, N))
    assert results["acc_adaptive"] <= results["acc_denoised"]
    assert "adaptive attack takes" in box.note.text()
    adaptive = box.table.horizontalHeaderItem(len(CLASSIFIER_KEYS) - 1)
    assert adaptive.text() == "after adaptive attack"
    assert "through the denoiser" in adaptive.toolTip()
    run = ctx.workspace.runs(kind="denoise")[0]
    assert run.title == "tiny defending fmnist-cnn-standard"
    qtbot.waitUntil(lambda: ctx.workspace.get(run.id).status == "finished")


def test_the_loaded_model_as_the_classifier(qtbot, ctx, panel, fmnist):
    torch.manual_seed(0)
    mine = models.create("mlp", hidden=16, depth=1)
    ctx.session.set_model(mine, "mine.safetensors")
    box = panel.defense
    assert box.classifier.itemText(box.classifier.count() - 1) == \
        "loaded model: mine.safetensors"
    box.choose("session", "tiny", N)
    results = _run(qtbot, box)
    assert results["acc_clean"] == pytest.approx(_clean_acc(mine, fmnist, N))
    assert all(box.figures()[k].endswith("%") for k in CLASSIFIER_KEYS)


def test_a_classifier_that_does_not_fit_is_a_message(qtbot, ctx, panel):
    ctx.session.set_model(models.create("mlp", in_shape=(3, 32, 32), hidden=8,
                                        depth=1), "wide.safetensors")
    box = panel.defense
    box.choose("session", "tiny", N)
    qtbot.mouseClick(box.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(box.handle.finished, timeout=TIMEOUT):
        pass
    assert box.controls.last_state == "failed"
    assert "the classifier does not fit the data" in box.controls.status.text()
    assert box.results is None
    assert box.figures()["clean"] == "—"


def test_a_real_image_or_no_data_is_a_message(qtbot, ctx, panel):
    box = panel.defense
    panel.form.kind.setCurrentText(REAL)
    qtbot.mouseClick(box.run_button, Qt.MouseButton.LeftButton)
    assert box.handle is None
    assert "needs labelled images" in box.controls.status.text()
    panel.form.kind.setCurrentText("gaussian")
    ctx.session.set_data(None, "", "")
    qtbot.mouseClick(box.run_button, Qt.MouseButton.LeftButton)
    assert box.handle is None
    assert "Choose a data set" in box.controls.status.text()
