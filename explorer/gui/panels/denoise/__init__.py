"""The Denoiser Lab page: ObsAtk against denoisers, and HAT to defend them.

The page's panel and every box and view only it uses live in this
folder; what other pages share is in ``explorer.gui.widgets``.
"""

from explorer.gui.panels.denoise.panel import DenoiserLabPanel

__all__ = ["DenoiserLabPanel"]
