"""Recipes in the app: "Copy recipe" on the pages that run something, and
opening a recipe dropped on the window.

A page gives :class:`CopyRecipeButton` a function returning its current
settings as ``(kind, config, device)``, the config as the page would record
it; the button puts that run's recipe (:mod:`explorer.store.recipe`, TOML)
on the clipboard. A page that can show a recipe in its form has
``apply_recipe(recipe) -> str`` (what it did, for the status bar);
:func:`open_recipe` reads a dropped file and hands it to that page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from explorer.core.params import ParamError

SUFFIX = ".toml"
# a recipe's kind -> the page that fills its form from it
PAGES = {"train": "training", "attack": "attack", "eval": "evaluate"}

Settings = tuple[str, dict[str, Any], str]  # kind, config, device


def copy_recipe(kind: str, config: dict[str, Any], device: str) -> str:
    """Put the recipe of a run of ``kind`` with ``config`` on the clipboard."""
    from explorer.store import recipe as recipes

    text = recipes.build(kind, config, device).to_toml()
    QGuiApplication.clipboard().setText(text)
    return text


class CopyRecipeButton(QPushButton):
    """Copies the recipe of ``settings()``; a bad setting's message goes to
    ``status`` (a label) instead."""

    copied = Signal(str)  # the TOML text

    def __init__(self, settings: Callable[[], Settings], status: QLabel | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__("Copy recipe", parent)
        self.setToolTip("Copy the recipe of these settings (TOML: data, model, "
                        "method, every parameter, seed, versions, checksums) to "
                        "the clipboard; `explorer run FILE` reproduces it, and "
                        "dropping the file on the window fills the form")
        self._settings, self._status = settings, status
        self.clicked.connect(self.copy)

    @Slot()
    def copy(self) -> str | None:
        try:
            kind, config, device = self._settings()
            text = copy_recipe(kind, config, device)
        except (ParamError, ValueError) as exc:
            self._say(f"Copy recipe: {exc}")
            return None
        self._say("Recipe copied to the clipboard.")
        self.copied.emit(text)
        return text

    def _say(self, text: str) -> None:
        if self._status is not None:
            self._status.setText(text)


def open_recipe(window: Any, path: str) -> str:
    """Show the recipe in ``path`` on its page with the form filled in;
    returns what happened (a bad file: one line naming it)."""
    from explorer.store import recipe as recipes

    try:
        recipe = recipes.read(path)
    except ParamError as exc:
        return str(exc)
    key = PAGES.get(recipe.kind)
    panel = window.panels.get(key) if key is not None else None
    if panel is None or not hasattr(panel, "apply_recipe"):
        return (f"{path}: a {recipe.kind} recipe opens on the command line only "
                f"(explorer run {path})")
    window.show_panel(key)
    try:
        return panel.apply_recipe(recipe)
    except (ParamError, ValueError, KeyError, TypeError) as exc:
        return f"{path}: cannot fill the form ({exc})"
