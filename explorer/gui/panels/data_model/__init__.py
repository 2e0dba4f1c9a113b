"""The Data & Model page: data set, model, inference wrapper, clean accuracy.

The page's panel and every box and view only it uses live in this
folder; what other pages share is in ``explorer.gui.widgets``.
"""

from explorer.gui.panels.data_model.panel import DataModelPanel

__all__ = ["DataModelPanel"]
