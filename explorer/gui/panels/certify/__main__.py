"""``python -m explorer.gui.panels.certify``: this page alone, on its demo."""

from explorer.gui.panels.preview import preview

raise SystemExit(preview("certify"))
