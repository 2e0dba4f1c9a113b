"""``python -m explorer.gui.panels.<page>``: one page alone, on its demo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from explorer.gui.panels import PANELS
from explorer.gui.panels.preview import preview


@pytest.mark.parametrize("spec", PANELS, ids=lambda s: s.page)
def test_each_page_folder_runs_as_a_module(spec):
    found = importlib.util.find_spec(f"explorer.gui.panels.{spec.page}.__main__")
    assert found is not None, f"panels/{spec.page}/ has no __main__.py"
    assert f'preview("{spec.key}")' in Path(found.origin).read_text(encoding="utf-8")


def test_preview_opens_the_page_and_starts_its_demo(qtbot, monkeypatch):
    seen = []

    def exec_(app):  # instead of the event loop: look at what is on screen
        seen.extend(w.windowTitle() for w in app.topLevelWidgets() if w.isVisible())
        return 0

    monkeypatch.setattr(QApplication, "exec", exec_)
    assert preview("data") == 0
    assert "Robustness Explorer — Data & Model" in seen


def test_an_unknown_page_is_a_usage_error(capsys):
    assert preview("nope") == 2
    assert "unknown panel 'nope'" in capsys.readouterr().err
