"""The Training page's "training images" field: 0 (shown as "all") trains on
every image, N on the first N (6,000 in the quick first run it starts with);
the run records it, the split note shows it, a value that leaves nothing to
train on is named."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

TINY = {"epochs": 1, "batch_size": 64, "eval_n": 32, "eval_steps": 1}


@pytest.fixture
def panel(training_page):
    training_page.form.choose("mlp", {"hidden": 16, "depth": 1}, "standard", {}, TINY)
    return training_page


def _type(qtbot, spin, text: str) -> None:
    """Select the spin box's text and type ``text`` like a user, then Enter."""
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Return)


def test_the_field_starts_at_the_quick_run_and_0_means_all(qtbot, panel):
    spin = panel.form.general.editor("train_images")
    assert spin.value() == 6000  # the page's quick first run
    assert panel.form.config().limit_train == 6000
    assert "0 = all" in spin.toolTip()
    assert spin.minimum() == 0
    _type(qtbot, spin, "0")
    assert spin.text() == "all"
    assert panel.form.config().limit_train is None


def test_typed_images_train_on_the_first_n_and_the_run_records_it(qtbot, ctx,
                                                                    panel):
    spin = panel.form.general.editor("train_images")
    _type(qtbot, spin, "-")  # no negative count can be typed
    assert spin.value() >= 0
    _type(qtbot, spin, "120")
    assert spin.value() == 120
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    handle = panel.handle
    assert handle is not None
    with qtbot.waitSignal(handle.finished, timeout=90000):
        pass
    assert handle.state == "done"
    # 10 % of the 120 images held out, 108 trained on
    qtbot.waitUntil(lambda: "108 trained on" in panel.split_note.text())
    assert panel.split_note.text().startswith("12 training images held out")
    assert ctx.workspace.get(panel.run_id).config["limit_train"] == 120


def test_one_image_leaves_nothing_to_train_on_and_says_so(qtbot, panel):
    _type(qtbot, panel.form.general.editor("train_images"), "1")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    handle = panel.handle
    with qtbot.waitSignal(handle.finished, timeout=30000):
        pass
    assert handle.state == "failed"
    assert ("holds out 1 of the 1 training images and leaves none to train on"
            in panel.status.text())
