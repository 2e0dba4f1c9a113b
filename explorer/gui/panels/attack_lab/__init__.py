"""The Attack Lab page: craft adversarial examples and watch them being made.

The page's panel and every box and view only it uses live in this
folder; what other pages share is in ``explorer.gui.widgets``.
"""

from explorer.gui.panels.attack_lab.panel import AttackLabPanel

__all__ = ["AttackLabPanel"]
