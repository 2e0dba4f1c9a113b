"""View settings kept between launches: the font size and the dark theme.

Both act on the whole application (``QApplication.setFont`` and
``setPalette``) and on pyqtgraph, whose plots paint their own background:
:func:`style_plots` sets the colours for new plots (``pg.setConfigOptions``)
and re-styles the ones already on screen. pyqtgraph is imported only there,
so the window can apply the saved look before torch and the plots load.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from explorer.gui import settings as settings_mod

FONT_KEY = "view/font_step"  # points added to the platform's font size
DARK_KEY = "view/dark_theme"
MIN_STEP, MAX_STEP = -4, 12
FALLBACK_PT = 9.0
# pyqtgraph's colours: the light ones are what explorer.gui.widgets.plots sets
LIGHT_PLOTS = ("w", "k")
DARK_PLOTS = ("#1f2124", "#d6d6d6")
_BASE_PT = "explorer_base_font_pt"  # the application's font size before any step

_light_palette: QPalette | None = None


def _app() -> QApplication:
    app = QApplication.instance()
    assert app is not None, "the view settings need a QApplication"
    return app


def base_point_size() -> float:
    """The font size the application started with (what Reset returns to)."""
    app = _app()
    value = app.property(_BASE_PT)
    if value is None:
        value = app.font().pointSizeF()
        if value <= 0:  # a font set in pixels
            value = FALLBACK_PT
        app.setProperty(_BASE_PT, float(value))
    return float(value)


def font_step(settings: QSettings) -> int:
    step = settings_mod.read(settings, FONT_KEY, 0, int)
    return max(MIN_STEP, min(MAX_STEP, step))


def apply_font(step: int) -> float:
    """Set the application font to the base size plus ``step`` points."""
    app = _app()
    size = base_point_size() + max(MIN_STEP, min(MAX_STEP, step))
    font = app.font()
    font.setPointSizeF(size)
    app.setFont(font)
    return size


def change_font(settings: QSettings, delta: int | None) -> float:
    """One step larger (+1), smaller (-1) or back to the base size (None)."""
    step = 0 if delta is None else font_step(settings) + delta
    step = max(MIN_STEP, min(MAX_STEP, step))
    settings.setValue(FONT_KEY, step)
    return apply_font(step)


def is_dark(settings: QSettings) -> bool:
    return bool(settings_mod.read(settings, DARK_KEY, False, bool))


def dark_palette() -> QPalette:
    """A dark palette for every widget (Fusion's roles, dark greys)."""
    p = QPalette()
    window, base, text = QColor(45, 45, 48), QColor(30, 30, 32), QColor(220, 220, 220)
    disabled = QColor(128, 128, 128)
    for role, colour in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.ToolTipBase, QColor(60, 60, 64)),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.PlaceholderText, disabled),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.BrightText, QColor(255, 90, 90)),
        (QPalette.ColorRole.Light, QColor(70, 70, 74)),
        (QPalette.ColorRole.Midlight, QColor(58, 58, 62)),
        (QPalette.ColorRole.Mid, QColor(40, 40, 42)),
        (QPalette.ColorRole.Dark, QColor(25, 25, 27)),
        (QPalette.ColorRole.Shadow, QColor(0, 0, 0)),
        (QPalette.ColorRole.Highlight, QColor(42, 130, 218)),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, QColor(100, 170, 255)),
    ):
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def apply_palette(dark: bool) -> None:
    """The dark palette, or the one the application had before."""
    global _light_palette
    app = _app()
    if _light_palette is None:
        _light_palette = QPalette(app.palette())
    app.setPalette(dark_palette() if dark else _light_palette)


def style_plots(dark: bool) -> None:
    """pyqtgraph's colours for new plots, and re-style the existing ones."""
    if "pyqtgraph" not in sys.modules:
        return  # no plot yet (the window calls this again once the pages exist)
    import pyqtgraph as pg

    background, foreground = DARK_PLOTS if dark else LIGHT_PLOTS
    pg.setConfigOptions(background=background, foreground=foreground)
    for widget in _app().allWidgets():
        if not isinstance(widget, pg.GraphicsView):
            continue
        widget.setBackground(background)
        for item in widget.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setPen(foreground)
                item.setTextPen(foreground)
            elif isinstance(item, pg.LabelItem):
                item.setText(item.text, color=foreground)


def set_dark(settings: QSettings, dark: bool) -> None:
    """Switch the theme now and remember it."""
    settings.setValue(DARK_KEY, bool(dark))
    apply_palette(dark)
    style_plots(dark)


def apply_saved(settings: QSettings) -> None:
    """The font size and theme chosen last time (at start-up)."""
    apply_font(font_step(settings))
    dark = is_dark(settings)
    if dark or _light_palette is not None:
        apply_palette(dark)
    style_plots(dark)
