"""The app's icon: set on the application at start-up, so every window has it."""

from __future__ import annotations

from explorer.gui.application import app_icon, application
from explorer.gui.main_window import MainWindow


def test_the_main_window_has_the_app_icon(qtbot):
    app = application()  # what `explorer gui` runs first
    assert not app.windowIcon().isNull()
    window = MainWindow(ask_on_close=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    icon = window.windowIcon()
    assert not icon.isNull()
    sizes = {s.width() for s in icon.availableSizes()}
    assert {16, 32, 48, 128, 256} <= sizes
    window.close()


def test_without_the_icon_files_the_icon_is_null(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_RESOURCES", str(tmp_path))
    assert app_icon().isNull()
