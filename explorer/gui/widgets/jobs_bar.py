"""Status-bar strip listing running jobs, each with its progress and a cancel button."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from explorer.gui.runner import JobHandle, JobRunner

CHIP_HEIGHT = 20


class _JobChip(QWidget):
    def __init__(self, handle: JobHandle, parent: QWidget) -> None:
        super().__init__(parent)
        self.handle = handle
        box = QHBoxLayout(self)
        box.setContentsMargins(4, 0, 4, 0)
        self.label = QLabel(handle.name)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(90)
        self.bar.setMaximumHeight(14)
        self.bar.setRange(0, 0)  # busy until the first progress event
        self.button = QToolButton()
        self.button.setText("✕")
        self.button.setFixedHeight(CHIP_HEIGHT)
        self.button.setToolTip(f"Cancel {handle.name}")
        self.button.clicked.connect(self.cancel)
        box.addWidget(self.label)
        box.addWidget(self.bar)
        box.addWidget(self.button)
        handle.progress.connect(self.on_progress)
        self.refresh()

    @Slot()
    def cancel(self) -> None:
        self.handle.cancel()
        self.button.setEnabled(False)
        self.label.setText(f"{self.handle.name} (cancelling)")

    @Slot(object)
    def on_progress(self, p) -> None:
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(p.done)

    def refresh(self) -> None:
        if self.handle.state == "queued":
            self.label.setText(f"{self.handle.name} (queued)")
        elif self.button.isEnabled():
            self.label.setText(self.handle.name)


class JobsBar(QWidget):
    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._box = QHBoxLayout(self)
        self._box.setContentsMargins(0, 0, 0, 0)
        # A fixed height keeps the status bar from growing when a chip appears,
        # which would re-layout and repaint the whole window (and its plots).
        self.setFixedHeight(CHIP_HEIGHT + 2)
        self.idle = QLabel("no jobs running")
        self._box.addWidget(self.idle)
        self.chips: dict[int, _JobChip] = {}
        runner.jobs_changed.connect(self.refresh)

    @Slot()
    def refresh(self) -> None:
        active = {id(h): h for h in self.runner.active()}
        for key in list(self.chips):
            if key not in active:
                chip = self.chips.pop(key)
                self._box.removeWidget(chip)
                chip.deleteLater()
        for key, handle in active.items():
            if key not in self.chips:
                chip = _JobChip(handle, self)
                handle.started.connect(chip.refresh)
                self.chips[key] = chip
                self._box.addWidget(chip)
        self.idle.setVisible(not self.chips)
