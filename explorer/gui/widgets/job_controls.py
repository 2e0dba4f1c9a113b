"""Run, Cancel, a progress bar and a status line that follow one job.

Every page starts its jobs through the runner and hands the handle to
:meth:`JobControls.follow`: the buttons flip while it runs, progress and
its label fill the bar, and a failure or a cancel is said on the status
line. The page still connects the handle's ``done``/``metric``/``snapshot``
to its own views; what every page did the same way lives here.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

ERROR_STYLE = "color: #b00020; font-weight: 600;"  # every page's error lines


class JobControls(QWidget):
    """``run_requested`` when Run is clicked; :meth:`follow` a started job."""

    run_requested = Signal()
    finished = Signal(str)  # the job's last state: done, failed or cancelled

    def __init__(self, run_text: str = "Run", parent: QWidget | None = None, *,
                 cancel_text: str = "Cancel", status: bool = True,
                 compact: bool = False, bar_below: bool = False) -> None:
        """``compact``: the status beside the buttons in a fixed two-line box
        and a thin bar below (a live view under it is never re-laid out when
        the text changes, which would repaint every plot). ``bar_below``: the
        bar on its own full-width row under the buttons (narrow side columns,
        where the buttons need the row's width)."""
        super().__init__(parent)
        self.handle = None  # the job followed now; dropped when it ends
        self.last_state: str | None = None  # how the last followed job ended
        self.run_button = QPushButton(run_text)
        self.cancel_button = QPushButton(cancel_text)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setVisible(status)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel)
        self.row = QHBoxLayout()
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.addWidget(self.run_button)
        self.row.addWidget(self.cancel_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        if compact:
            box.setSpacing(2)
            self.progress.setTextVisible(False)
            self.progress.setFixedHeight(6)
            self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 4)
            self.status.setSizePolicy(QSizePolicy.Policy.Ignored,
                                      QSizePolicy.Policy.Fixed)
            self.row.addWidget(self.status, 1)
            box.addLayout(self.row)
            box.addWidget(self.progress)
        elif bar_below:
            box.addLayout(self.row)
            box.addWidget(self.progress)
            box.addWidget(self.status)
        else:
            self.progress.setMaximumHeight(16)
            self.row.addWidget(self.progress, 1)
            box.addLayout(self.row)
            box.addWidget(self.status)

    def add_button(self, button: QWidget) -> None:
        """A page's own button (Save, Export…) after Run and Cancel."""
        self.row.insertWidget(2, button)

    # -- following a job ------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.running

    def follow(self, handle, text: str = "", **slots) -> None:
        """Show ``handle``'s progress and outcome; Run waits until it ends.
        ``slots``: the page's own receivers by signal name (``done=…``,
        ``snapshot=…``), connected before the row's."""
        for name, slot in slots.items():
            getattr(handle, name).connect(slot)
        handle.progress.connect(self._on_progress)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_cancelled)
        handle.finished.connect(self._on_finished)
        self.handle = handle
        self.progress.setRange(0, 0)  # busy until the first progress event
        self.progress.setFormat("%p%")
        self.cancel_button.setEnabled(True)
        self.run_button.setEnabled(False)
        self.say(text)

    @Slot()
    def cancel(self) -> None:
        if self.running:
            self.handle.cancel()
            self.cancel_button.setEnabled(False)
            self.say("stopping…")

    def say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")

    def set_run_enabled(self, enabled: bool) -> None:
        """Let the page say when Run makes sense (never while a job runs)."""
        self.run_button.setEnabled(enabled and not self.running)

    # -- the handle's signals -------------------------------------------------------
    def _stale(self) -> bool:
        """A job this row no longer follows (the page started another)."""
        sender = self.sender()
        return sender is not None and sender is not self.handle

    @Slot(object)
    def _on_progress(self, p) -> None:
        if self._stale():
            return
        # Only what changed: each range or format change re-lays out the bar.
        if self.progress.maximum() != max(p.total, 1):
            self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)
        form = f"{p.label} %p%" if p.label else "%p%"
        if self.progress.format() != form:
            self.progress.setFormat(form)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._stale():
            self.say(f"Failed: {message}", error=True)

    @Slot()
    def _on_cancelled(self) -> None:
        if not self._stale():
            self.say("Cancelled.")

    @Slot()
    def _on_finished(self) -> None:
        if self._stale():
            return
        handle, self.handle = self.handle, None
        state = handle.state if handle is not None else "cancelled"
        if state == "done":
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(True)
        self.last_state = state
        self.finished.emit(state)


class FollowsJob:
    """For a page or tab whose one job a :class:`JobControls` at
    ``self.controls`` follows: its handle, whether it runs, and Cancel. Put it
    after the Qt base (``class Tab(QWidget, FollowsJob)``)."""

    controls: JobControls

    @property
    def handle(self):
        return self.controls.handle

    @property
    def running(self) -> bool:
        return self.controls.running

    def cancel(self) -> None:
        self.controls.cancel()
