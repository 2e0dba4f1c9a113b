"""The Evaluate & Compare page: several models through the same attacks, and a report.

The page's panel and every box and view only it uses live in this
folder; what other pages share is in ``explorer.gui.widgets``.
"""

from explorer.gui.panels.evaluate.panel import EvaluatePanel

__all__ = ["EvaluatePanel"]
