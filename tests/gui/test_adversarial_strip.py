"""The strip of adversarial examples under the training curves."""

from __future__ import annotations

import numpy as np
from gui_helpers import assert_apart, assert_shape_kept

from explorer.core.defenses.evaluation import STRIP
from explorer.core.jobs import Snapshot
from explorer.gui.panels.training.adversarial_strip import WAITING, AdversarialStrip
from explorer.gui.widgets.triplet_view import FOOLED, HELD

CLASSES = ("cat", "dog", "ship")


def _snapshot(n: int = 3, epoch: int = 2) -> Snapshot:
    rng = np.random.default_rng(0)
    clean = rng.random((n, 1, 8, 8), dtype=np.float32)
    return Snapshot(epoch, 5, {
        "clean": clean, "adversarial": np.clip(clean + 0.1, 0, 1),
        "labels": np.array([0, 1, 2][:n]), "pred_clean": np.array([0, 1, 1][:n]),
        "pred_adv": np.array([0, 2, 1][:n]), "eps": np.array(0.1)}, STRIP)


def test_captions_and_colours_say_what_fooled_the_model(qtbot):
    strip = AdversarialStrip()
    qtbot.addWidget(strip)
    strip.show()
    assert strip.title.text() == WAITING
    strip.show_snapshot(_snapshot(), CLASSES)
    assert strip.epoch == 2
    assert strip.captions == ["cat → cat", "dog → ship", "ship → dog"]
    assert strip.fooled == [False, True, True]
    assert "epoch 2 of 5" in strip.title.text()
    assert "right: 2 of 3 clean, 1 of 3 under attack" in strip.title.text()
    clean_cells = [clean for clean, _ in strip._pairs]
    adv_cells = [adv for _, adv in strip._pairs]
    assert HELD in adv_cells[0].caption.styleSheet()
    assert FOOLED in adv_cells[1].caption.styleSheet()
    # The clean row has its own verdict: image 3 was wrong before the attack.
    assert clean_cells[1].caption.toolTip() == "dog → dog"
    assert HELD in clean_cells[1].caption.styleSheet()
    assert FOOLED in clean_cells[2].caption.styleSheet()
    assert not adv_cells[0].picture.pixmap().isNull()
    assert adv_cells[0].picture.pixmap().width() == adv_cells[0].picture.width()
    assert "0.1" in strip.row_names[1].text()


def test_a_new_epoch_reuses_cells_and_keeps_the_strip_size(qtbot):
    strip = AdversarialStrip()
    qtbot.addWidget(strip)
    strip.show()
    size = strip.sizeHint()
    strip.show_snapshot(_snapshot(3), CLASSES)
    assert strip.sizeHint() == size  # no relayout of the curves above
    cells = list(strip._pairs)
    strip.show_snapshot(_snapshot(2, epoch=3))  # no class names: label numbers
    assert strip._pairs == cells
    assert strip.captions == ["0 → 0", "1 → 2"]
    drawn = [adv.picture.pixmap().isNull() for _, adv in strip._pairs[:3]]
    assert drawn == [False, False, True]
    strip.clear()
    assert strip.title.text() == WAITING
    assert strip.captions == []
    assert all(adv.picture.pixmap().isNull() for _, adv in strip._pairs)
    assert strip.sizeHint() == size


def test_wide_images_keep_their_shape_and_long_names_elide(qtbot):
    """A 16×32 image is drawn twice as wide as high, whatever the strip's
    size; a long class name is shortened with "…", whole in the tooltip,
    and neighbouring captions never overlap."""
    strip = AdversarialStrip()
    qtbot.addWidget(strip)
    strip.show()
    rng = np.random.default_rng(1)
    clean = rng.random((3, 3, 16, 32), dtype=np.float32)
    long_name = "a class name far too long for one column"
    strip.show_snapshot(Snapshot(1, 5, {
        "clean": clean, "adversarial": clean, "labels": np.array([0, 1, 2]),
        "pred_clean": np.array([0, 1, 2]), "pred_adv": np.array([1, 1, 2]),
        "eps": np.array(0.1)}, STRIP), (long_name, "dog", "ship"))
    for w, h in ((1280, 800), (760, 300), (1600, 200)):  # (≥ 8 columns)
        strip.resize(w, h)
        qtbot.waitUntil(lambda w=w: strip.width() == w)
        for clean_cell, adv_cell in strip._pairs[:3]:
            assert_shape_kept(clean_cell.picture, 16, 32)
            assert_shape_kept(adv_cell.picture, 16, 32)
        adv_row = [adv for _, adv in strip._pairs]
        assert_apart([cell.caption for cell in adv_row])
        assert_apart([cell.picture for cell in adv_row])
    caption = strip._pairs[0][1].caption
    first_line, second_line = caption.text().split("\n")
    assert first_line.endswith("…")
    assert second_line == "→ dog"
    assert caption.toolTip() == f"{long_name} → dog"
    assert strip.captions[0] == f"{long_name} → dog"
