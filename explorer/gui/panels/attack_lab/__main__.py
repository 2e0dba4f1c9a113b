"""``python -m explorer.gui.panels.attack_lab``: this page alone, on its demo."""

from explorer.gui.panels.preview import preview

raise SystemExit(preview("attack"))
