"""Presenter mode: the app as a guided, full-screen story (``explorer gui
--presenter``, F11 or View ▸ Presenter mode)."""

from explorer.gui.presenter.mode import Presenter
from explorer.gui.presenter.story import Step, StepRun, Story, default_story

__all__ = ["Presenter", "Step", "StepRun", "Story", "default_story"]
