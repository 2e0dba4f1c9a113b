"""``python -m explorer.gui.panels.data_model``: this page alone, on its demo."""

from explorer.gui.panels.preview import preview

raise SystemExit(preview("data"))
