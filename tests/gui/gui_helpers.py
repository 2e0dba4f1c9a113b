"""Clicks the GUI tests of more than one page make the same way."""

from __future__ import annotations

from PySide6.QtCore import Qt


def check_models(page, names) -> None:
    """Tick exactly ``names`` in the Evaluate page's model list."""
    for i, choice in enumerate(page.models.choices()):
        state = (Qt.CheckState.Checked if choice.name in names
                 else Qt.CheckState.Unchecked)
        page.models.list.item(i).setCheckState(state)
