"""``explorer gui --presenter --step N --screenshot PNG``: open the story on
step N, wait until its caption has its numbers, save the window, quit."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

DEMO_TIMEOUT_MS = 180_000


class PresenterShot(QObject):
    def __init__(self, window, step: int, path: Path, size: tuple[int, int]) -> None:
        super().__init__(window)
        self.window, self.step, self.path, self.size = window, step, path, size
        self.error: str | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.on_timeout)

    @Slot()
    def start(self) -> None:
        self.timer.start(DEMO_TIMEOUT_MS)
        self.window.start_presenter(self.step)
        presenter = self.window.presenter
        presenter.step_ready.connect(self.capture)
        # The picture is the window at --size, not the whole (virtual) screen.
        self.window.showNormal()
        self.window.resize(*self.size)
        if presenter.run is not None and presenter.run.caption is not None:
            self.capture(self.step)

    @Slot(int)
    def capture(self, index: int) -> None:
        if index != self.step or not self.timer.isActive():
            return
        self.timer.stop()
        QTimer.singleShot(500, self._save)  # let the last repaint land

    @Slot()
    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            self.error = f"could not write screenshot {self.path}"
        self.window.presenter.leave()
        self.window.close()

    @Slot()
    def on_timeout(self) -> None:
        self.error = f"presenter step {self.step + 1} did not finish in time"
        self.window.close()
