"""The Denoiser Lab's rows keep every image's shape when the window is wide,
narrow or 1280×800-like, and their captions and headers never overlap."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import assert_apart, assert_shape_kept

from explorer.core.jobs import Snapshot
from explorer.gui.panels.denoise.rows import COLUMNS, DenoiseRows

NAMES = ("dncnn-fmnist-standard", "a-denoiser-with-a-much-longer-file-name")


def _snapshots(h: int, w: int, clean: bool = True) -> list[Snapshot]:
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, h, w), dtype=np.float32)
    noisy = np.clip(x + 0.1 * rng.standard_normal(x.shape, dtype=np.float32), 0, 1)
    arrays = {"noisy": noisy, "denoised": np.clip(noisy * 0.9 + 0.05, 0, 1),
              "v_adv": noisy}
    if clean:
        arrays["clean"] = x
    later = dict(arrays, v_adv=np.clip(noisy + 0.02, 0, 1))
    return [Snapshot(0, 2, arrays, "step 0/2"), Snapshot(2, 2, later, "best")]


def _filled(qtbot, h: int, w: int, clean: bool = True) -> DenoiseRows:
    rows = DenoiseRows()
    qtbot.addWidget(rows)
    rows.reset(list(NAMES), 2)
    if not clean:
        rows.set_reference_free("a real noisy image has no clean ground truth")
    for name in NAMES:
        for snap in _snapshots(h, w, clean):
            rows.add_snapshot(name, snap)
    with qtbot.waitSignal(rows.repainted, timeout=5000):
        rows.show()
    return rows


@pytest.mark.parametrize(("w", "h"), [(730, 400), (1280, 800), (1600, 420)])
def test_row_images_stay_square_at_any_width(qtbot, w, h):
    rows = _filled(qtbot, 28, 28)
    rows.resize(w, h)
    qtbot.waitUntil(lambda: rows.width() == w)
    for name in NAMES:
        pictures = [tile.picture for tile in rows.tiles[name]]
        for picture in pictures[1:]:
            assert_shape_kept(picture, 28, 28)
        assert_apart(pictures)
        assert_apart([tile.caption for tile in rows.tiles[name]])
    assert_apart(rows.headers)


def test_a_wide_window_letterboxes_instead_of_stretching(qtbot):
    rows = _filled(qtbot, 28, 28)
    rows.resize(2000, 500)
    picture = rows.tiles[NAMES[0]][2].picture
    qtbot.waitUntil(lambda: picture.width() > picture.height() + 20)
    drawn = picture.image_rect()
    assert drawn.width() == drawn.height()
    assert drawn.width() < picture.width()  # blank room beside, not a stretch


def test_a_real_image_that_is_not_square_keeps_its_shape(qtbot):
    rows = _filled(qtbot, 36, 40, clean=False)
    rows.resize(900, 500)
    qtbot.waitUntil(lambda: rows.width() == 900)
    tiles = rows.tiles[NAMES[0]]
    assert tiles[0].picture.pixmap().isNull()  # no clean image
    for tile in tiles[1:]:
        assert_shape_kept(tile.picture, 36, 40)
    assert rows.captions(NAMES[0])[1] == "PSNR —\nSSIM —"


def test_narrow_headers_elide_with_the_title_in_the_tooltip(qtbot):
    rows = _filled(qtbot, 28, 28)
    rows.resize(560, 400)  # narrower than the columns ask: tiles shrink
    attacked = rows.headers[4]
    qtbot.waitUntil(attacked.is_elided)
    assert attacked.text().endswith("…")
    assert attacked.toolTip().startswith(f"{COLUMNS[4]}: ")
    assert_apart(rows.headers)
    for tile in rows.tiles[NAMES[1]][:5]:  # (the error column holds its scale bar)
        assert tile.picture.width() < 84  # the pictures gave way too
    assert_shape_kept(rows.tiles[NAMES[1]][1].picture, 28, 28)
    # the captions the panel reads stay whole, whatever is shown
    assert rows.caption_psnr(NAMES[0], 2) > 0
