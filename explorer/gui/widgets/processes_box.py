"""Where a page's run goes: in the app, or separate process(es) under torchrun.

The Training and Evaluate pages each hold one. "in the app" is the page's
own in-process job (the default); "separate process(es)" starts ``explorer
train`` / ``explorer eval`` through :mod:`explorer.core.launch` with
"processes: N" and the checked devices (the GPUs, or just CPU). The choice,
N and the devices are remembered between launches under ``key``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QSpinBox,
    QWidget,
)

from explorer.core import launch
from explorer.store import Workspace, WorkspaceError

IN_APP, SEPARATE = "app", "separate"


def close_dangling(ws: Workspace | None, run_id: str | None, status: str,
                   error: str | None = None) -> None:
    """A separate process's run, if a killed child left it "running", closed
    as it ended (its process group is gone: nothing else writes it now)."""
    if ws is None or run_id is None:
        return
    try:
        if ws.get(run_id).status == "running":
            ws.finish(run_id, status, error=error)
    except WorkspaceError:
        pass  # the run lists say what the workspace holds


class ProcessesBox(QWidget):
    changed = Signal()

    def __init__(self, settings: QSettings, key: str,
                 devices: Sequence[str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings, self.key = settings, key
        self.device_names = list(launch.device_choices() if devices is None
                                 else devices)
        self.mode = QComboBox()
        self.mode.addItem("in the app", IN_APP)
        self.mode.addItem("separate process(es)", SEPARATE)
        self.mode.setToolTip("separate: explorer train/eval under torchrun, in a "
                             "process group of its own; Stop ends all of it")
        self.processes = QSpinBox()
        self.processes.setRange(1, launch.max_processes(self.device_names))
        self.processes.setToolTip("torchrun --nproc-per-node: one process per "
                                  "GPU, or CPU processes (gloo)")
        self.device_boxes: list[QCheckBox] = []
        devices_row = QHBoxLayout()
        devices_row.setContentsMargins(0, 0, 0, 0)
        for name in self.device_names:
            box = QCheckBox(name)
            box.setChecked(True)
            box.setEnabled(name != launch.CPU)  # CPU is the only choice there
            box.toggled.connect(self._on_changed)
            self.device_boxes.append(box)
            devices_row.addWidget(box)
        devices_row.addStretch(1)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("run:", self.mode)
        form.addRow("processes:", self.processes)
        form.addRow("devices:", devices_row)
        self._restore()
        self.mode.currentIndexChanged.connect(self._on_changed)
        self.processes.valueChanged.connect(self._on_changed)
        self._update()

    # -- values -----------------------------------------------------------------
    @property
    def separate(self) -> bool:
        return self.mode.currentData() == SEPARATE

    def devices(self) -> list[str]:
        return [b.text() for b in self.device_boxes if b.isChecked()]

    def set_values(self, *, separate: bool | None = None, processes: int | None = None,
                   devices: Sequence[str] | None = None) -> None:
        if separate is not None:
            self.mode.setCurrentIndex(1 if separate else 0)
        if processes is not None:
            self.processes.setValue(processes)
        if devices is not None:
            for box in self.device_boxes:
                if box.text() != launch.CPU:
                    box.setChecked(box.text() in devices)

    def command(self, cli_args: Sequence[str],
                workspace: str | Path | None) -> tuple[list[str], dict[str, str]]:
        """The torchrun command line and environment for ``cli_args``;
        ParamError naming processes or devices when they do not fit."""
        devices = self.devices()
        argv = launch.command(cli_args, processes=self.processes.value(),
                              workspace=workspace, devices=devices)
        return argv, launch.environment(devices, processes=self.processes.value())

    # -- remembered ------------------------------------------------------------------
    def _restore(self) -> None:
        s = self.settings
        self.mode.setCurrentIndex(1 if s.value(f"{self.key}/mode") == SEPARATE else 0)
        try:
            n = int(s.value(f"{self.key}/processes", 1))
        except (TypeError, ValueError):
            n = 1
        self.processes.setValue(n)
        saved = s.value(f"{self.key}/devices")
        if isinstance(saved, str) and saved:
            self.set_values(devices=saved.split(","))

    @Slot()
    def _on_changed(self) -> None:
        s = self.settings
        s.setValue(f"{self.key}/mode", self.mode.currentData())
        s.setValue(f"{self.key}/processes", self.processes.value())
        s.setValue(f"{self.key}/devices", ",".join(self.devices()))
        self._update()
        self.changed.emit()

    def _update(self) -> None:
        self.processes.setEnabled(self.separate)
        for box in self.device_boxes:
            box.setEnabled(self.separate and box.text() != launch.CPU)
