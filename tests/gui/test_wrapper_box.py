"""The Data & Model panel's inference wrapper, driven like a user."""

from __future__ import annotations

import pytest

from explorer.core.defenses.mixup_inference import MixupInference


@pytest.fixture
def panel(evaluated_data_panel):
    return evaluated_data_panel


def _wrapped_with(session, samples: int) -> bool:
    wrapper = getattr(session.model, "wrapper", None)
    return wrapper is not None and wrapper["params"]["samples"] == samples


def test_choose_mixup_inference_then_none(qtbot, panel, ctx):
    box, session = panel.wrapper_box, ctx.session
    base = session.model
    assert not box.form.isVisible()
    box.combo.setCurrentIndex(box.combo.findData("mixup-inference"))
    assert box.form.isVisible()
    box.form.editor("samples").setValue(2)  # fewer draws: a faster test
    with qtbot.waitSignal(panel.evaluated, timeout=60_000) as done:
        qtbot.waitUntil(lambda: _wrapped_with(session, 2), timeout=30_000)
    wrapped = session.model
    assert isinstance(wrapped, MixupInference)
    assert wrapped.model is base
    assert wrapped.meta is base.meta
    assert session.model_source == "fmnist-cnn-standard + Mixup Inference"
    info = panel.model_box.info.text()
    assert "WRAPPED in Mixup Inference" in info
    assert "randomized" in info
    assert "obfuscated" in info
    assert "fashion-mnist-mini train[:1000]" in box.status.text()
    assert "Mixup Inference" in panel.accuracy.headline.text()
    assert 0.5 < done.args[0]["clean_acc"] <= 1.0
    # the model box checks the wrapped model again: its outputs are random
    badge = panel.model_box.badge
    qtbot.waitUntil(lambda: "random output" in badge.text(), timeout=30_000)
    assert "EOT" in badge.toolTip()
    runs = ctx.workspace.runs(kind="eval")
    assert runs[0].config["wrapper"]["params"]["samples"] == 2

    box.combo.setCurrentIndex(box.combo.findData(None))
    assert session.model is base
    assert session.model_source == "fmnist-cnn-standard"
    assert "WRAPPED" not in panel.model_box.info.text()
    assert not box.status.isVisible()
    assert not badge.isVisible()  # the built-in alone is clean again
    with qtbot.waitSignal(panel.evaluated, timeout=60_000):
        pass


def test_a_newly_loaded_model_is_wrapped_again(qtbot, panel, ctx):
    box, session = panel.wrapper_box, ctx.session
    box.combo.setCurrentIndex(box.combo.findData("mixup-inference"))
    box.form.editor("samples").setValue(1)
    qtbot.waitUntil(lambda: _wrapped_with(session, 1), timeout=30_000)
    panel.model_box.choose_builtin("fmnist-cnn-pgdat")
    qtbot.waitUntil(lambda: _wrapped_with(session, 1)
                    and session.model_source.startswith("fmnist-cnn-pgdat"),
                    timeout=30_000)
    assert session.model.model.meta.training["method"] == "pgd-at"
    assert "WRAPPED" in panel.model_box.info.text()
    with qtbot.waitSignal(panel.evaluated, timeout=60_000):
        pass


def test_wrapper_without_a_model_asks_for_one(qtbot, panel, ctx):
    ctx.session.set_model(None, "")
    box = panel.wrapper_box
    box.combo.setCurrentIndex(box.combo.findData("mixup-inference"))
    assert box.status.text() == "Choose a model to wrap."
    assert ctx.session.model is None
