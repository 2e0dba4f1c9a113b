"""Say clearly why a window cannot open, before Qt aborts with a cryptic message.

Imports nothing from Qt: it runs before the QApplication exists.
"""

from __future__ import annotations

import ctypes
import os
import sys

# Shared libraries Qt's xcb plugin loads (PySide6 >= 6.5), with the Debian/Ubuntu
# package that provides each.
XCB_LIBRARIES = (
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
)


def _loadable(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def prepare(screenshot: bool) -> str | None:
    """Return a one-line problem, or None when a window can open.

    A screenshot needs no screen: without a display it renders offscreen.
    """
    if sys.platform != "linux":
        return None
    chosen = os.environ.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return None  # offscreen, wayland, vnc, ...: nothing to check here
    if not chosen and os.environ.get("WAYLAND_DISPLAY"):
        return None
    if not os.environ.get("DISPLAY"):
        if screenshot:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
            return None
        return (
            "no display to open the window on (DISPLAY is not set): run it on a "
            "desktop or under xvfb-run, or use --screenshot"
        )
    missing = [pkg for lib, pkg in XCB_LIBRARIES if not _loadable(lib)]
    if missing:
        return (
            "Qt's X11 support needs system libraries that are missing; on "
            f"Debian/Ubuntu: sudo apt install {' '.join(missing)}"
        )
    return None
