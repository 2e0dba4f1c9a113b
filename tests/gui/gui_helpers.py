"""Clicks and checks the GUI tests of more than one page make the same way."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt


def check_models(page, names) -> None:
    """Tick exactly ``names`` in the Evaluate page's model list."""
    for i, choice in enumerate(page.models.choices()):
        state = (Qt.CheckState.Checked if choice.name in names
                 else Qt.CheckState.Unchecked)
        page.models.list.item(i).setCheckState(state)


def assert_shape_kept(picture, height: int, width: int) -> None:
    """The drawn rectangle has the image's width/height ratio (±1 px) and lies
    inside the widget."""
    drawn = picture.image_rect()
    assert drawn.width() > 0
    assert drawn.height() > 0
    assert picture.rect().contains(drawn)
    # one side follows from the other to within a pixel (integer rounding)
    off_w = abs(drawn.width() - drawn.height() * width / height)
    off_h = abs(drawn.height() - drawn.width() * height / width)
    assert min(off_w, off_h) <= 1, (drawn, width, height)
    assert picture.pixmap().size() == drawn.size()


def assert_apart(widgets) -> None:
    """No two of the widgets' rectangles (in window coordinates) overlap."""
    rects = [QRect(w.mapTo(w.window(), QPoint(0, 0)), w.size()) for w in widgets]
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not a.intersects(b), (a, b)
