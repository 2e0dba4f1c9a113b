"""Run, cancel and save the live attack; the live view underneath."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from explorer.core.attacks.jobs import attack_live, save_examples
from explorer.gui.context import AppContext
from explorer.gui.panels.attack_lab.live_view import LiveAttackView
from explorer.gui.widgets.image_picker import Chosen

MAX_LIVE_SNAPSHOTS = 200


class LiveAttackBox(QWidget):
    """Starts ``attack_live`` on chosen images (slot ``attack/live``), feeds its
    snapshots to a :class:`LiveAttackView`, and saves the last result into a
    new workspace run. ``run_requested`` asks the panel for the attack."""

    run_requested = Signal()
    result_shown = Signal()  # a finished result is on screen
    stopped = Signal()  # done, failed or cancelled

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.job = None
        self.result: dict[str, Any] | None = None
        self.saved_dir: Path | None = None
        self._config: dict[str, Any] = {}
        self.run_button = QPushButton("Run attack")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.save_button = QPushButton("Save examples")
        self.save_button.setToolTip("Write PNGs and arrays of the last result "
                                    "into a new workspace run")
        self.save_button.setEnabled(False)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self.save)
        self.status = QLabel("Select images, then Run.")
        self.status.setWordWrap(True)
        # A fixed box: a new status text at the start and end of every run
        # must not re-lay out the view below (that repaints every plot).
        self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 4)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.save_label = QLabel()
        self.save_label.setWordWrap(True)
        self.save_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_label.hide()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        top = QHBoxLayout()
        for button in (self.run_button, self.cancel_button, self.save_button):
            top.addWidget(button)
        top.addWidget(self.status, 1)
        self.view = LiveAttackView()
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 0)
        box.setSpacing(2)
        box.addLayout(top)
        box.addWidget(self.progress)
        box.addWidget(self.save_label)
        box.addWidget(self.view, 1)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(
        self,
        items: Sequence[Chosen],
        classes: Sequence[str],
        attack: str,
        params: dict[str, Any],
        config: dict[str, Any],
    ) -> None:
        s = self.ctx.session
        x = torch.from_numpy(np.stack([it.x for it in items]).astype(np.float32))
        y = torch.tensor([it.y for it in items], dtype=torch.long)
        every = max(1, int(params.get("steps", 1)) // MAX_LIVE_SNAPSHOTS)
        config = {**config, "mode": "live", "n": len(items)}
        job = self.ctx.runner.start(
            attack_live, name=f"attack {attack}", slot="attack/live",
            job_args=(s.model, x, y), attack=attack, params=params, seed=0,
            device=s.device, snapshot_every=every,
            recorder=self.ctx.run_recorder("attack", config),
        )
        job.snapshot.connect(self._on_snapshot)
        job.progress.connect(self._on_progress)
        job.done.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self.job, self._config, self.result = job, config, None
        eps, norm = params.get("eps"), params.get("norm", "linf")
        # An l-inf budget fixes the perturbation's colour scale for the run.
        bound = eps if eps is not None and norm == "linf" and eps <= 1 else None
        target = (params.get("target_class")
                  if params.get("targeted") == "class" else None)
        self.view.start(items, classes, bound, target)
        self.save_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.run_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.status.setText(f"running {attack} on {len(items)} image(s)…")

    @Slot()
    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    @Slot(object)
    def _on_snapshot(self, snapshot) -> None:
        self.view.add_snapshot(snapshot)

    @Slot(object)
    def _on_progress(self, p) -> None:
        if self.progress.maximum() != max(p.total, 1):
            self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)

    @Slot(dict)
    def _on_done(self, result: dict) -> None:
        self.result = result
        self.view.finish(result)
        self.status.setText(
            f"done in {result.get('seconds', 0):.2f} s: "
            f"{100 * result.get('success_rate', 0):.0f}% fooled, mean l-inf "
            f"{255 * result.get('mean_linf', 0):.1f}/255")
        self.save_button.setEnabled(True)
        self._stopped()
        self.result_shown.emit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Attack failed: {message}")
        self._stopped()

    @Slot()
    def _on_cancelled(self) -> None:
        self.status.setText("Attack cancelled.")
        self._stopped()

    def _stopped(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.stopped.emit()

    # -- save -------------------------------------------------------------------
    @Slot()
    def save(self) -> None:
        ws = self.ctx.workspace
        if self.result is None:
            self._say("Nothing to save yet: run an attack first.")
            return
        if ws is None:
            self._say("No workspace is open (File ▸ Choose workspace).")
            return
        run = ws.create_run("attack", {**self._config, "mode": "saved examples"})
        folder = ws.run_dir(run.id)
        try:
            files = save_examples(folder, self.result, classes=self.view.classes)
        except (OSError, ValueError) as exc:
            ws.finish(run.id, "failed", error=str(exc))
            self._say(f"Saving failed: {exc}")
            return
        ws.finish(run.id, "finished", summary={
            k: v for k, v in self.result.items() if isinstance(v, float | int | str)})
        self.saved_dir = folder
        self._say(f"Saved {len(files)} files to {folder}")
        self.save_label.setToolTip(str(folder))

    def _say(self, text: str) -> None:
        self.save_label.setText(text)
        self.save_label.setVisible(bool(text))
