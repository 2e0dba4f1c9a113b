"""``python -m explorer.gui.panels.training``: this page alone, on its demo."""

from explorer.gui.panels.preview import preview

raise SystemExit(preview("training"))
