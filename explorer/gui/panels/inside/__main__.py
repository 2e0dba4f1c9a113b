"""``python -m explorer.gui.panels.inside``: this page alone, on its demo."""

from explorer.gui.panels.preview import preview

raise SystemExit(preview("inside"))
