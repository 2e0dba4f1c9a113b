"""The Look Inside page: image-space slices, loss landscapes, feature spaces.

The page's panel and every box and view only it uses live in this
folder; what other pages share is in ``explorer.gui.widgets``.
"""

from explorer.gui.panels.inside.panel import InsidePanel

__all__ = ["InsidePanel"]
