"""``python -m explorer.gui.panels.playground``: this page alone, on its demo."""

from explorer.gui.panels.preview import preview

raise SystemExit(preview("playground"))
