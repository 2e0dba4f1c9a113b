"""Tiled images keep their shape and captions elide: the shared AspectImage,
ElidedLabel and ImageGrid, resized like a user resizes the window."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import assert_apart, assert_shape_kept
from PySide6.QtWidgets import QHBoxLayout, QWidget

from explorer.gui.widgets.aspect_image import AspectImage, ElidedLabel
from explorer.gui.widgets.image_grid import ImageGrid

LONG = "Ankle boot with a very long class name that cannot fit"


@pytest.mark.parametrize(("height", "width"), [(28, 28), (36, 40), (20, 60)])
@pytest.mark.parametrize(("w", "h"), [(300, 80), (80, 300), (84, 84), (1280, 800)])
def test_an_image_keeps_its_shape_at_any_widget_size(qtbot, height, width, w, h):
    picture = AspectImage(48)
    qtbot.addWidget(picture)
    picture.set_image(np.random.default_rng(0).random((height, width)))
    picture.resize(w, h)
    picture.show()
    qtbot.waitUntil(lambda: picture.size().width() == w)
    assert_shape_kept(picture, height, width)
    # as large as the room allows: it touches two opposite sides
    drawn = picture.image_rect()
    assert drawn.width() >= w - 1 or drawn.height() >= h - 1


def test_small_images_are_enlarged_pixel_by_pixel(qtbot):
    picture = AspectImage(84)
    qtbot.addWidget(picture)
    checker = np.indices((28, 28)).sum(axis=0) % 2  # alternating black/white
    picture.set_image(checker.astype(np.float32))
    picture.resize(84, 84)
    picture.show()
    qtbot.waitUntil(lambda: picture.pixmap().width() == 84)
    shown = picture.pixmap().toImage()
    grays = {shown.pixelColor(x, y).value() for x in range(84) for y in (0, 41)}
    assert grays == {0, 255}  # no blended grays from smoothing


def test_clearing_leaves_nothing_drawn(qtbot):
    picture = AspectImage(40)
    qtbot.addWidget(picture)
    picture.set_image(np.ones((8, 8)))
    picture.clear()
    assert picture.pixmap().isNull()
    assert picture.image_rect().isEmpty()


def test_a_long_caption_is_elided_with_the_full_text_in_its_tooltip(qtbot):
    row = QWidget()
    qtbot.addWidget(row)
    box = QHBoxLayout(row)
    labels = [ElidedLabel(LONG), ElidedLabel("Coat")]
    for label in labels:
        box.addWidget(label)
    row.resize(160, 40)
    row.show()
    qtbot.waitUntil(lambda: labels[0].is_elided())
    first = labels[0]
    assert first.text().endswith("…")
    assert first.fontMetrics().horizontalAdvance(first.text()) <= first.width()
    assert first.full_text() == LONG
    assert first.toolTip() == LONG
    assert labels[1].text() == "Coat"
    assert not labels[1].is_elided()
    assert_apart(labels)
    row.resize(900, 40)  # room again: the whole text comes back
    qtbot.waitUntil(lambda: not first.is_elided())
    assert first.text() == LONG


def test_each_line_of_a_two_line_caption_is_elided_alone(qtbot):
    label = ElidedLabel(f"{LONG}\n→ Bag")
    qtbot.addWidget(label)
    label.setFixedWidth(70)
    label.show()
    qtbot.waitUntil(label.is_elided)
    first, second = label.text().split("\n")
    assert first.endswith("…")
    assert second == "→ Bag"


@pytest.fixture(scope="module")
def grid_images():
    rng = np.random.default_rng(1)
    return [rng.random((28, 28)) for _ in range(16)]


@pytest.mark.parametrize(("w", "h"), [(1280, 800), (400, 900), (1200, 260)])
def test_grid_tiles_stay_square_and_captions_apart(qtbot, grid_images, w, h):
    grid = ImageGrid(columns=8, tile=28)
    qtbot.addWidget(grid)
    captions = [LONG if i % 2 else "Bag" for i in range(len(grid_images))]
    grid.set_images(grid_images, captions)
    grid.resize(w, h)
    grid.show()
    qtbot.waitUntil(lambda: grid._tiles[1].caption.is_elided())
    for tile in grid._tiles:
        assert_shape_kept(tile.picture, 28, 28)
    tile = grid._tiles[1]
    assert tile.caption.text().endswith("…")
    assert tile.toolTip() == LONG
    assert tile.caption.toolTip() == LONG
    assert grid.captions[1] == LONG
    first_row = grid._tiles[:8]
    assert_apart([t.caption for t in first_row])
    assert_apart([t.picture for t in grid._tiles])


def test_a_grid_squeezed_below_its_size_shrinks_images_without_stretching(
        qtbot, grid_images):
    holder = QWidget()
    qtbot.addWidget(holder)
    grid = ImageGrid(columns=8, tile=28, parent=holder)
    grid.set_images(grid_images, ["Trouser"] * len(grid_images))
    holder.resize(500, 60)
    grid.setGeometry(0, 0, 500, 60)  # less height than two rows ask for
    holder.show()
    qtbot.waitUntil(lambda: grid._tiles[0].picture.height() < 28)
    for tile in grid._tiles:
        assert_shape_kept(tile.picture, 28, 28)


def test_a_grid_narrower_than_its_columns_shrinks_tiles_apart(qtbot, grid_images):
    """Six columns of 28 px tiles in 240 px (the Look Inside column): the
    tiles give way instead of overlapping; pictures stay square."""
    holder = QWidget()
    qtbot.addWidget(holder)
    box = QHBoxLayout(holder)
    box.setContentsMargins(0, 0, 0, 0)
    grid = ImageGrid(columns=6, tile=28)
    box.addWidget(grid)
    grid.set_images(grid_images[:12], ["T-shirt/top", "Ankle boot", "Trouser"] * 4)
    holder.setFixedWidth(240)
    with qtbot.waitExposed(holder):
        holder.show()
    qtbot.waitUntil(lambda: grid._tiles[0].width() < 28 + 14)
    assert_apart(grid._tiles)
    assert_apart([t.caption for t in grid._tiles[:6]])
    for tile in grid._tiles:
        assert_shape_kept(tile.picture, 28, 28)
        assert tile.caption.is_elided()
    widths = [tile.width() for tile in grid._tiles]
    assert max(widths) - min(widths) <= 1  # columns stay equal (to rounding)
