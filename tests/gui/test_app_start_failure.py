"""An unattended start (a screenshot) whose window cannot be built ends with
one line instead of waiting for a `loaded` signal that never comes."""

from __future__ import annotations

from explorer.gui import app as gui_app
from explorer.gui.main_window import MainWindow


def test_a_page_that_fails_to_build_ends_a_screenshot_run(qapp, tmp_path, monkeypatch,
                                                         capsys):
    def broken(self) -> None:
        raise RuntimeError("a page could not be built")

    monkeypatch.setattr(MainWindow, "finish_loading", broken)
    code = gui_app.run(workspace=str(tmp_path / "ws"),
                       screenshot=str(tmp_path / "shot.png"), panel="data")
    assert code == 1
    err = capsys.readouterr().err
    assert ("error: the window could not be built: RuntimeError: a page could "
            "not be built") in err
    assert not (tmp_path / "shot.png").exists()
    for widget in qapp.topLevelWidgets():  # the half-built window
        if isinstance(widget, MainWindow):
            widget.close()
            widget.deleteLater()
