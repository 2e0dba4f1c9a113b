"""Which model am I attacking? The current-model strip on the pages that use
the session's model and data and in the status bar, one click from changing
them; and the first launch, which opens on Data & Model with both loaded."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

from explorer.core import models
from explorer.core.defenses import alarms
from explorer.gui import settings as settings_mod
from explorer.gui.widgets.current_model import NO_MODEL, CurrentModelStrip, shown_name

FMNIST_TEST = "Data: Fashion-MNIST mini (built-in), test split, 1,000 images"
STRIP_PAGES = ("attack", "training", "evaluate", "inside", "denoise", "certify")


def _tiny() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))


@pytest.fixture
def strip(qtbot, ctx):
    widget = CurrentModelStrip(ctx.session)
    qtbot.addWidget(widget)
    widget.resize(1100, widget.sizeHint().height())
    widget.show()
    return widget


def test_the_strip_names_the_model_the_data_and_a_measured_accuracy(
        qtbot, ctx, strip, fmnist):
    session = ctx.session
    assert strip.model_label.full_text() == NO_MODEL
    assert strip.data_label.full_text() == "Data: none loaded"
    assert strip.change_button.isVisible()
    session.set_data(fmnist, "fashion-mnist-mini", "test")
    assert strip.data_label.full_text() == FMNIST_TEST
    model = _tiny()
    session.set_model(model, "tiny.pt")
    # no number is made up before the accuracy is measured
    assert strip.model_label.full_text() == (
        "Model: tiny.pt (Sequential) · clean acc. not measured")
    session.set_clean_accuracy(model, fmnist, None, measuring=True)
    assert strip.model_label.full_text().endswith("clean acc. measuring…")
    session.set_clean_accuracy(model, fmnist, 0.9123)
    assert strip.model_label.full_text() == "Model: tiny.pt (Sequential) · clean 91.2 %"
    assert strip.text() == f"Model: tiny.pt (Sequential) · clean 91.2 % · {FMNIST_TEST}"
    # with room for the line, nothing is shortened
    qtbot.waitUntil(lambda: strip.model_label.text() == strip.model_label.full_text())
    assert strip.data_label.text() == strip.data_label.full_text()
    # a late result for another model labels nothing
    session.set_clean_accuracy(_tiny(), fmnist, 0.5)
    assert "clean 91.2 %" in strip.model_label.full_text()
    # the accuracy was measured on the test split, not on the train split
    session.set_data(fmnist, "fashion-mnist-mini", "train")
    assert strip.model_label.full_text().endswith("clean acc. not measured")
    assert "train split" in strip.data_label.full_text()
    session.set_model(None, "")
    assert strip.model_label.full_text() == NO_MODEL


def test_the_guardrail_badge_shows_what_was_found_until_the_model_changes(
        qtbot, ctx, strip):
    session = ctx.session
    model = _tiny()
    session.set_model(model, "probs.pt")
    assert strip.badge.isHidden()
    session.set_model_warnings(model, ("softmax",),
                               "softmax: the outputs sum to 1.\nFix: wrap it.")
    assert strip.badge.isVisible()
    assert strip.badge.text() == "⚠ softmax"
    assert "Fix: wrap it." in strip.badge.toolTip()
    assert "⚠ softmax" in strip.text()
    session.set_model_warnings(_tiny(), ("near chance",), "")  # not the session's
    assert strip.badge.text() == "⚠ softmax"
    session.set_model(_tiny(), "clean.pt")
    assert strip.badge.isHidden()
    assert "⚠" not in strip.text()


def test_a_long_name_is_shortened_and_whole_in_the_tooltip(qtbot, ctx, strip):
    name = ("a-paper-repository-checkpoint-resnet50-linf-8-255-trades-beta-6-"
            "best-epoch-12")
    ctx.session.set_model(_tiny(), name)
    strip.resize(420, strip.height())
    label = strip.model_label
    qtbot.waitUntil(lambda: "…" in label.text(), timeout=5000)
    assert label.full_text().startswith(f"Model: {name} (Sequential)")
    assert label.toolTip() == label.full_text()
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()
    assert label.text().endswith("measured")  # shortened in the middle
    assert strip.height() < 3 * strip.fontMetrics().height()  # one line


def test_change_asks_for_the_data_and_model_page(qtbot, strip):
    with qtbot.waitSignal(strip.change_requested, timeout=2000):
        qtbot.mouseClick(strip.change_button, Qt.MouseButton.LeftButton)


def test_loading_a_model_on_the_data_page_updates_the_strip_with_its_badge(
        qtbot, ctx, evaluated_data_panel, tmp_path):
    """The Data & Model page measures the accuracy and the guardrails: a model
    that outputs probabilities gets 'softmax' and 'near chance' on the strip."""
    page, session = evaluated_data_panel, ctx.session
    strip = CurrentModelStrip(session)
    qtbot.addWidget(strip)
    acc = page.accuracy.result["clean_acc"]
    assert strip.model_label.full_text() == (
        f"Model: fmnist-cnn-standard (SmallCNN) · clean {100 * acc:.1f} %")
    assert strip.badge.isHidden()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10),
                              torch.nn.Softmax(dim=1))
    torch.nn.init.zeros_(net[1].weight)  # class 0 for every image: 10 %
    torch.nn.init.zeros_(net[1].bias)
    path = tmp_path / "probs.pt2"
    torch.export.save(torch.export.export(
        net, (torch.rand(2, 1, 28, 28),),
        dynamic_shapes=({0: torch.export.Dim("batch")},)), path)
    page.model_box.open_file(str(path))
    qtbot.waitUntil(lambda: strip.badge.text() == "⚠ softmax, near chance",
                    timeout=30_000)
    assert "wrap the model with log" in strip.badge.toolTip()
    assert strip.model_label.full_text().startswith("Model: probs.pt2 (")
    assert strip.model_label.full_text().endswith("clean 10.0 %")
    page.model_box.choose_builtin("fmnist-cnn-pgdat")
    qtbot.waitUntil(lambda: "fmnist-cnn-pgdat (SmallCNN) · clean"
                    in strip.model_label.full_text(), timeout=30_000)
    assert strip.badge.isHidden()


def test_the_training_pages_best_checkpoint_shows_on_its_strip(
        qtbot, ctx, training_page, tmp_path):
    strip = training_page.model_strip
    assert strip.data_label.full_text() == FMNIST_TEST
    assert strip.model_label.full_text() == NO_MODEL
    run_folder = tmp_path / "runs" / "20261203-221424-train-bc9e"
    run_folder.mkdir(parents=True)
    best = models.save(models.load_builtin("fmnist-cnn-standard"),
                       run_folder / "best.safetensors")
    alarm = alarms.Alarm("catastrophic", 2, "Catastrophic overfitting at epoch 2",
                         "Robust accuracy collapsed.", 1)
    training_page.alarm.show_alarm(
        alarm, best, "Shown because Fast-AT trains on one-step adversarial examples.")
    with qtbot.waitSignal(ctx.session.model_changed, timeout=20_000):
        qtbot.mouseClick(training_page.alarm.button, Qt.MouseButton.LeftButton)
    # the run's checkpoint by its run and file; the whole path in the tooltip
    assert strip.model_label.full_text() == (
        "Model: run 20261203-221424-train-bc9e: best.safetensors (SmallCNN) · "
        "clean acc. not measured")
    assert strip.model_label.toolTip() == (
        f"{strip.model_label.full_text()}\n{best}")
    assert ctx.session.model_source == str(best)  # what recipes record


def test_a_model_file_outside_a_run_shows_by_its_file_name():
    assert shown_name("fmnist-cnn-standard") == "fmnist-cnn-standard"
    assert shown_name("/data/models/resnet18.pt") == "resnet18.pt"
    assert shown_name("/ws/runs/20261203-221424-train-bc9e/last.pt") == (
        "run 20261203-221424-train-bc9e: last.pt")


# -- the main window ----------------------------------------------------------------
def test_first_launch_opens_data_and_model_with_both_loaded_and_strips_everywhere(
        qtbot, loaded_window):
    window = loaded_window()  # fresh settings: nothing saved yet
    assert window.first_launch
    assert window.stack.currentWidget() is window.data_panel
    session = window.ctx.session
    qtbot.waitUntil(lambda: session.model is not None and session.dataset is not None,
                    timeout=30_000)
    assert (session.data_name, session.split) == ("fashion-mnist-mini", "test")
    assert session.model_source == "fmnist-cnn-standard"
    acc = window.data_panel.accuracy.result["clean_acc"]
    model_line = f"Model: fmnist-cnn-standard (SmallCNN) · clean {100 * acc:.1f} %"
    status = window.model_strip
    assert status in window.statusBar().findChildren(CurrentModelStrip)
    assert status.model_label.full_text() == model_line
    assert status.data_label.full_text() == (
        "Data: Fashion-MNIST mini (built-in), test")
    # every page that uses the session's model and data says which, and only those
    for key, page in window.panels.items():
        strips = page.findChildren(CurrentModelStrip)
        assert len(strips) == (1 if key in STRIP_PAGES else 0), key
    for key in STRIP_PAGES:
        strip = window.panels[key].model_strip
        assert strip.model_label.full_text() == model_line, key
        assert strip.data_label.full_text() == FMNIST_TEST, key

    window.show_panel("attack")
    strip = window.panels["attack"].model_strip
    assert strip.isVisible()
    assert strip.height() < 3 * strip.fontMetrics().height()  # one small line
    # the page's content starts below the strip, not under it
    tabs = window.panels["attack"].tabs
    assert tabs.mapTo(window, tabs.rect().topLeft()).y() >= \
        strip.mapTo(window, strip.rect().bottomLeft()).y()
    qtbot.mouseClick(strip.change_button, Qt.MouseButton.LeftButton)
    assert window.stack.currentWidget() is window.data_panel
    assert window.nav.currentRow() == 0

    window.show_panel("inside")
    qtbot.mouseClick(status.change_button, Qt.MouseButton.LeftButton)
    assert window.stack.currentWidget() is window.data_panel

    window.data_panel.model_box.choose_builtin("fmnist-cnn-pgdat")
    inside = window.panels["inside"].model_strip
    qtbot.waitUntil(lambda: "fmnist-cnn-pgdat (SmallCNN) · clean" in
                    inside.model_label.full_text(), timeout=30_000)
    assert status.model_label.full_text() == inside.model_label.full_text()


def test_a_later_launch_opens_the_page_open_last_time(qtbot, loaded_window):
    saved = settings_mod.open_settings()
    saved.setValue("window/panel", "attack")
    saved.sync()
    window = loaded_window()
    assert not window.first_launch
    assert window.stack.currentWidget() is window.panels["attack"]
    assert window.nav.currentRow() == 1
