"""The Start / Stop / Resume row of a background training run, with its status.

The Training page and the Denoiser Lab's Train tab each hold one. The page
asks for the run when Start or Resume is clicked (``start_requested``,
``resume_requested``), starts the job itself and hands the handle to
:meth:`follow`; this widget then keeps the buttons and the status line right
(progress, failure, "stopped; resume it") and emits ``finished`` at the end.
The page connects the handle's metrics, snapshots and result to its views.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

STOPPED = "run {run_id} stopped; its checkpoint is kept — select it {where} and " \
          "press Resume."


class TrainingRunControls(QWidget):
    start_requested = Signal()
    resume_requested = Signal()
    finished = Signal()

    def __init__(self, start_text: str = "Start training", *, where: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.where = where  # where the page lists its runs ("under Runs")
        self.handle = None
        self.run_id: str | None = None
        self.start_button = QPushButton(start_text)
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume selected")
        self.stop_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume_requested)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for button in (self.start_button, self.stop_button, self.resume_button):
            row.addWidget(button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(row)
        box.addWidget(self.status)

    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.running

    def set_buttons(self, *, can_start: bool = True, can_resume: bool = False) -> None:
        self.start_button.setEnabled(can_start and not self.running)
        self.stop_button.setEnabled(self.running)
        self.resume_button.setEnabled(can_resume and not self.running)

    def follow(self, handle, run_id: str, *, resume: bool) -> None:
        self.handle, self.run_id = handle, run_id
        handle.progress.connect(self._on_progress)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_cancelled)
        handle.finished.connect(self._on_finished)
        self.status.setText(f"{'resuming' if resume else 'starting'} {run_id}…")
        self.set_buttons(can_start=False)

    def can_resume(self, run_dir: Path, run_id: str) -> bool:
        """Whether the run left a checkpoint; says so on the status line if not."""
        if (Path(run_dir) / "last.pt").exists():
            return True
        self.status.setText(f"Run {run_id} has no checkpoint to resume from.")
        return False

    @Slot()
    def stop(self) -> None:
        if self.running:
            self.handle.cancel()
            self.status.setText("stopping after the current batch…")

    def _stale(self) -> bool:
        sender = self.sender()
        return sender is not None and sender is not self.handle

    @Slot(object)
    def _on_progress(self, event) -> None:
        if self._stale():
            return
        self.status.setText(f"run {self.run_id}: {event.label} "
                            f"({100 * event.done / max(event.total, 1):.0f}%)")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._stale():
            self.status.setText(f"training failed: {message}")

    @Slot()
    def _on_cancelled(self) -> None:
        if not self._stale():
            self.status.setText(STOPPED.format(run_id=self.run_id, where=self.where))

    @Slot()
    def _on_finished(self) -> None:
        if self._stale():
            return
        self.handle = None
        self.set_buttons()
        self.finished.emit()
