"""The first-run tour: three callouts, shown once, dismissible, shown again on ask."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from explorer.gui import settings as settings_mod
from explorer.gui import tour as tour_mod
from explorer.gui.main_window import MainWindow
from explorer.gui.tour import Bubble


@pytest.fixture
def open_window(loaded_window):
    """Main windows as app.run opens them (tests/gui/conftest.py); ``tour=True``
    is what an interactive launch passes (tests and --screenshot runs leave it
    off)."""
    return loaded_window


def shown_bubbles(window: MainWindow) -> list[Bubble]:
    return [b for b in window.findChildren(Bubble) if b.isVisible()]


def nav_row_centre_y(window: MainWindow, row: int) -> int:
    rect = window.nav.visualItemRect(window.nav.item(row))
    return window.nav.viewport().mapTo(window, rect.center()).y()


def test_tour_shows_on_first_launch_walks_three_callouts_and_not_again(
        qtbot, open_window):
    window = open_window(tour=True)
    assert window.tour is not None
    bubble = window.tour.bubble
    assert shown_bubbles(window) == [bubble]
    seen = []
    for row, key in enumerate(("data", "attack", "training")):
        assert bubble.counter.text() == f"{row + 1} of 3"
        seen.append(bubble.title.text())
        # its pointer is level with the page's entry; the menu bar stays clear
        top = bubble.geometry().top()
        assert abs(top + bubble.pointer_y - nav_row_centre_y(window, row)) <= 5
        assert top >= window.menuBar().geometry().bottom()
        assert bubble.geometry().left() >= window.nav.width() - 10
        assert window.tour.step.page == key
        assert bubble.next_button.text() == ("Got it" if row == 2 else "Next")
        qtbot.mouseClick(bubble.next_button, Qt.MouseButton.LeftButton)
    assert seen == ["Start here", "Attack Lab", "Training"]
    qtbot.waitUntil(lambda: not shown_bubbles(window), timeout=5000)
    assert window.stack.currentWidget() is window.data_panel  # the tour moved nothing
    window.close()

    again = open_window(tour=True)
    assert again.tour is None
    assert shown_bubbles(again) == []


def test_closing_a_callout_ends_the_tour_for_good(qtbot, open_window):
    window = open_window(tour=True)
    qtbot.mouseClick(window.tour.bubble.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not shown_bubbles(window), timeout=5000)
    assert settings_mod.read(settings_mod.open_settings(), tour_mod.DONE_KEY,
                             False, bool)
    window.close()
    assert open_window(tour=True).tour is None


def test_no_tour_unless_the_launch_asks_for_it(qtbot, open_window):
    """Tests and --screenshot runs open the window without tour=True."""
    window = open_window()
    assert window.tour is None
    assert shown_bubbles(window) == []


def test_help_shows_the_tour_again_after_dismissal(qtbot, open_window):
    settings_mod.open_settings().setValue(tour_mod.DONE_KEY, True)
    window = open_window(tour=True)
    assert window.tour is None
    again = next(a for a in window.help_menu.actions()
                 if a.text() == "Show the tour again")
    again.trigger()
    assert [b.counter.text() for b in shown_bubbles(window)] == ["1 of 3"]
    qtbot.mouseClick(window.tour.bubble.next_button, Qt.MouseButton.LeftButton)
    assert window.tour.bubble.counter.text() == "2 of 3"
    again.trigger()  # a second ask restarts the same tour, not a second bubble
    assert [b.counter.text() for b in shown_bubbles(window)] == ["1 of 3"]
