"""Run, cancel and save the live attack; the live view underneath."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.core.attacks.jobs import attack_live, save_examples
from explorer.gui.context import AppContext
from explorer.gui.panels.attack_lab.live_view import LiveAttackView
from explorer.gui.widgets.image_picker import Chosen
from explorer.gui.widgets.job_controls import JobControls
from explorer.gui.widgets.recorder import RecordControl

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
        self.result: dict[str, Any] | None = None
        self.saved_dir: Path | None = None
        self._config: dict[str, Any] = {}
        self.controls = JobControls("Run attack", compact=True)
        self.controls.run_requested.connect(self.run_requested)
        self.controls.finished.connect(self._on_finished)
        self.run_button = self.controls.run_button
        self.run_button.setDefault(True)
        self.cancel_button = self.controls.cancel_button
        self.progress, self.status = self.controls.progress, self.controls.status
        self.status.setText("Select images, then Run.")
        self.save_button = QPushButton("Save examples")
        self.save_button.setToolTip("Write PNGs and arrays of the last result "
                                    "into a new workspace run")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save)
        self.controls.add_button(self.save_button)
        self.save_label = QLabel()
        self.save_label.setWordWrap(True)
        self.save_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_label.hide()
        self.view = LiveAttackView()
        self.record = RecordControl(self.view, ctx.runner)
        self.controls.add_button(self.record)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 0)
        box.setSpacing(2)
        box.addWidget(self.controls)
        box.addWidget(self.save_label)
        box.addWidget(self.view, 1)

    @property
    def job(self):
        return self.controls.handle

    @property
    def running(self) -> bool:
        return self.controls.running

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
        self.controls.follow(job, f"running {attack} on {len(items)} image(s)…")
        job.snapshot.connect(self._on_snapshot)
        job.done.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self._config, self.result = config, None
        eps, norm = params.get("eps"), params.get("norm", "linf")
        # An l-inf budget fixes the perturbation's colour scale for the run.
        bound = eps if eps is not None and norm == "linf" and eps <= 1 else None
        target = (params.get("target_class")
                  if params.get("targeted") == "class" else None)
        self.view.start(items, classes, bound, target)
        self.save_button.setEnabled(False)

    @Slot()
    def cancel(self) -> None:
        self.controls.cancel()

    @Slot(object)
    def _on_snapshot(self, snapshot) -> None:
        self.view.add_snapshot(snapshot)

    @Slot(dict)
    def _on_done(self, result: dict) -> None:
        self.result = result
        self.view.finish(result)
        self.status.setText(
            f"done in {result.get('seconds', 0):.2f} s: "
            f"{100 * result.get('success_rate', 0):.0f}% fooled, mean l-inf "
            f"{255 * result.get('mean_linf', 0):.1f}/255")
        self.save_button.setEnabled(True)
        self.result_shown.emit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.controls.say(f"Attack failed: {message}", error=True)

    @Slot()
    def _on_cancelled(self) -> None:
        self.controls.say("Attack cancelled.")

    @Slot(str)
    def _on_finished(self, _state: str) -> None:
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
