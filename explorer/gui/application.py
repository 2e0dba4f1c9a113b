"""The QApplication of every entry point (the window, a page preview, benches).

Sets the Qt binding for pyqtgraph and superqt, a short GIL switch interval,
the window icon and the GUI-thread garbage collector (explorer.gui.collector).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from explorer.core.resources import resource_path

# Jobs run Python between torch calls in a worker thread; with CPython's
# default 5 ms switch interval the UI thread can wait that long for the GIL
# at every hand-over. 1 ms keeps the event loop's waits short (bench/ui_latency).
GIL_SWITCH_S = float(os.environ.get("EXPLORER_SWITCH_INTERVAL", "0.001"))


def application() -> QApplication:
    sys.setswitchinterval(GIL_SWITCH_S)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Robustness Explorer")
    app.setOrganizationName("robustness-explorer")
    app.setWindowIcon(app_icon())  # every window's, and the taskbar's
    from explorer.gui import collector

    collector.install()  # garbage collection in this thread only (see there)
    return app


def app_icon() -> QIcon:
    """The app's icon (explorer/resources/icons/, drawn by scripts/make_icons.py):
    each PNG size, so small sizes stay crisp; null when the files are absent."""
    icon = QIcon()
    for size in (16, 32, 48, 128, 256):
        path = resource_path("icons", f"explorer-{size}.png")
        if path.is_file():
            icon.addFile(str(path))
    return icon
