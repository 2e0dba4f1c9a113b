"""``python -m explorer.gui.panels.evaluate``: this page alone, on its demo."""

from explorer.gui.preview import preview

raise SystemExit(preview("evaluate"))
