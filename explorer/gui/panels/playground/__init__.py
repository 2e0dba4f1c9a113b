"""The Playground page: two small networks trained side by side on a 2-D set.

The page's panel and every box and view only it uses live in this
folder; what other pages share is in ``explorer.gui.widgets``.
"""

from explorer.gui.panels.playground.panel import PlaygroundPanel

__all__ = ["PlaygroundPanel"]
