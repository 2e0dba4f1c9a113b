"""Start the application: paint the window first, then load torch and panels."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer, Slot
from PySide6.QtWidgets import QApplication

from explorer.gui.application import application

DEMO_TIMEOUT_MS = 180_000


def _stamp(what: str) -> None:
    sys.stdout.write(f"{what} {time.time():.6f}\n")
    sys.stdout.flush()


class _AfterFirstPaint(QObject):
    """Runs ``then`` once the window has painted (torch loads after that)."""

    def __init__(self, app: QApplication, then, probe: bool) -> None:
        super().__init__(app)
        self.then, self.probe, self.seen = then, probe, False

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint and not self.seen:
            self.seen = True
            if self.probe:
                _stamp("painted")
            # After this paint is flushed to the screen, not inside it.
            QTimer.singleShot(30, self.then)
            QApplication.instance().removeEventFilter(self)
        return False


class _Screenshot(QObject):
    """Show a panel, run its demo action, save the window as PNG, quit."""

    def __init__(self, window, panel: str, path: Path) -> None:
        super().__init__(window)
        self.window, self.panel_key, self.path = window, panel, path
        self.error: str | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.on_timeout)

    @Slot()
    def start(self) -> None:
        self.window.show_panel(self.panel_key)
        panel = self.window.panels[self.panel_key]
        panel.demo_finished.connect(self.capture)
        self.timer.start(DEMO_TIMEOUT_MS)
        panel.run_demo()

    @Slot()
    def capture(self) -> None:
        self.timer.stop()
        # Let the last repaint (throttled to ~30 Hz) land before grabbing.
        QTimer.singleShot(300, self._save)

    @Slot()
    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            self.error = f"could not write screenshot {self.path}"
        self.window.close()

    @Slot()
    def on_timeout(self) -> None:
        self.error = f"the {self.panel_key} panel's demo did not finish in time"
        self.window.close()


def run(
    *,
    workspace: str | None = None,
    device: str | None = None,
    screenshot: str | None = None,
    panel: str | None = None,
    size: tuple[int, int] = (1280, 800),
    startup_probe: bool = False,
    presenter: bool = False,
    step: int = 1,
) -> int:
    """Open the main window; returns the process exit code."""
    app = application()
    from explorer.gui.main_window import MainWindow

    unattended = screenshot is not None or startup_probe
    window = MainWindow(workspace, device, ask_on_close=not unattended, panel=panel,
                        tour=not unattended)
    shot = None
    if presenter and screenshot:
        from explorer.gui.presenter.shot import PresenterShot

        window.resize(*size)
        shot = PresenterShot(window, step - 1, Path(screenshot), size)
        window.loaded.connect(shot.start)
    elif presenter:
        window.loaded.connect(lambda: window.start_presenter(step - 1))
    elif screenshot:
        key = panel or "data"
        window.resize(*size)
        shot = _Screenshot(window, key, Path(screenshot))
        window.loaded.connect(shot.start)
    if startup_probe:
        # bench/startup.py reads these lines: first paint, then panels ready.
        window.loaded.connect(lambda: _stamp("ready"))
        window.loaded.connect(window.close)
    failed: list[str] = []

    def load() -> None:
        try:
            window.finish_loading()
        except Exception as exc:
            if not unattended:
                raise
            # nothing would ever emit `loaded`: say why and end, never wait
            failed.append(f"the window could not be built: {type(exc).__name__}: "
                          f"{exc}")
            app.exit(1)

    app.installEventFilter(_AfterFirstPaint(app, load, startup_probe))
    window.show()
    code = app.exec()
    if failed:
        sys.stderr.write(f"error: {failed[0]}\n")
        return 1
    if shot is not None and shot.error:
        sys.stderr.write(f"error: {shot.error}\n")
        return 1
    return code
