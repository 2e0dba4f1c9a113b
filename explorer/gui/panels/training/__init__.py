"""The Training page: train a defense in the background, curves live, stop and resume.

The page's panel and every box and view only it uses live in this
folder; what other pages share is in ``explorer.gui.widgets``.
"""

from explorer.gui.panels.training.panel import TrainingPanel

__all__ = ["TrainingPanel"]
