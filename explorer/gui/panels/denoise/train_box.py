"""The Denoiser Lab's Train tab: train a denoiser (standard or HAT) in the
background with live curves; runs are recorded in the workspace (kind
``train-denoiser``) and a stopped one resumes from its checkpoint."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from explorer.core.denoise.runs import PLAN, train_denoiser_run
from explorer.core.jobs import Metric, Snapshot
from explorer.core.params import ParamError
from explorer.gui.context import AppContext, workspace_runs
from explorer.gui.panels.denoise.curves import DenoiseCurves
from explorer.gui.panels.denoise.train_form import DenoiseTrainForm
from explorer.gui.widgets.training_run import TrainingRunControls

KIND = "train-denoiser"
SLOT = "denoise/train"
RESUMABLE = ("interrupted", "cancelled", "failed")
REDRAW_MS = 100
WORSE_HINT = ("The denoiser is still worse than the noisy input ({clean:.2f} dB "
              "vs {noisy:.2f} dB): train longer (more epochs or images; smaller "
              "batches give more updates) or check the learning rate (about "
              "1e-3 suits Adam here; much larger diverges).")


class DenoiseTrainBox(QWidget):
    finished = Signal(str)  # the outcome: done, failed or cancelled

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.run_id: str | None = None
        self.problem = ""  # why training cannot start now (set by the panel)
        self.form = DenoiseTrainForm()
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.run_controls = TrainingRunControls("Start training", where="below")
        self.run_controls.start_requested.connect(self._on_start_clicked)
        self.run_controls.resume_requested.connect(self.resume_selected)
        self.run_controls.finished.connect(self.refresh_runs)
        controls = self.run_controls
        self.start_button = controls.start_button
        self.stop_button = controls.stop_button
        self.resume_button, self.status = controls.resume_button, controls.status
        self.hint = QLabel(wordWrap=True, styleSheet="color: #8a5300;")
        self.hint.hide()
        left = QWidget()
        left.setFixedWidth(330)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(scroll, 1)
        ll.addWidget(self.run_controls)
        ll.addWidget(self.hint)
        self.curves = DenoiseCurves()
        self.runs = QListWidget()
        self.runs.setMaximumHeight(110)
        self.runs.setToolTip("Denoiser training runs of this workspace; select "
                             "a stopped one and press Resume")
        self.runs.itemSelectionChanged.connect(self._update_buttons)
        right = QVBoxLayout()
        right.addWidget(self.curves, 1)
        right.addWidget(QLabel("Runs (best weights: best.safetensors in the "
                               "run folder — add it on the Attack tab)"))
        right.addWidget(self.runs)
        root = QHBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.addWidget(left)
        root.addLayout(right, 1)
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self.curves.redraw)
        ctx.runner.jobs_changed.connect(self.refresh_runs)
        self.refresh_runs()


    # -- runs -------------------------------------------------------------------
    @Slot()
    def refresh_runs(self) -> None:
        ws = self.ctx.workspace
        chosen = self.selected()
        self.runs.blockSignals(True)
        self.runs.clear()
        for record in workspace_runs(ws, KIND):
            cfg = record.config
            item = QListWidgetItem(f"{record.id} — {cfg.get('method', '?')} "
                                   f"{cfg.get('arch', '?')} — {record.status}")
            item.setData(Qt.ItemDataRole.UserRole, (record.id, record.status))
            self.runs.addItem(item)
            item.setSelected(record.id == chosen)
        self.runs.blockSignals(False)
        self._update_buttons()

    def selected(self) -> str | None:
        items = self.runs.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole)[0] if items else None

    @Slot()
    def _update_buttons(self) -> None:
        items = self.runs.selectedItems()
        status = items[0].data(Qt.ItemDataRole.UserRole)[1] if items else ""
        self.run_controls.set_buttons(can_resume=status in RESUMABLE)

    @property
    def handle(self):
        return self.run_controls.handle

    @property
    def running(self) -> bool:
        return self.run_controls.running

    def stop(self) -> None:
        self.run_controls.stop()

    # -- start, stop, resume --------------------------------------------------------
    @Slot()
    def _on_start_clicked(self) -> None:
        self.start()

    def start(self) -> bool:
        s = self.ctx.session
        if self.problem:
            self.status.setText(self.problem)
            return False
        try:
            config = self.form.config(tuple(s.dataset.info.shape))
        except (ParamError, ValueError) as exc:
            self.status.setText(str(exc))
            return False
        root = str(self.ctx.settings.value(f"data/root/{s.data_name}", "") or "")
        config.update(data=s.data_name, root=root or None)
        title = f"{config['method']} {config['arch']} denoiser on {s.data_name}"
        recorder = self.ctx.run_recorder(KIND, config, title=title)
        if recorder is None:
            self.status.setText("No workspace could be opened, so runs cannot "
                                "be recorded.")
            return False
        self._launch(config, recorder, resume=False)
        return True

    @Slot()
    def resume_selected(self) -> None:
        run_id, ws = self.selected(), self.ctx.workspace
        if ws is None or run_id is None or self.running:
            return
        if not self.run_controls.can_resume(ws.run_dir(run_id), run_id):
            return
        earlier = ws.metrics(run_id)  # read before the job records new epochs
        self._launch(ws.get(run_id).config, self.ctx.resume_recorder(run_id),
                     resume=True)
        for name, points in earlier.items():
            for step, value in points:
                self.curves.add(name, step, value)
        self._redraw.start()

    def _launch(self, config: dict[str, Any], recorder, *, resume: bool) -> None:
        self.run_id = recorder.run_id
        self.curves.reset(config["epochs"])
        self.hint.hide()
        handle = self.ctx.runner.start(
            train_denoiser_run, name=f"training {config['method']} denoiser",
            slot=SLOT, job_args=(config,), recorder=recorder,
            run_dir=self.ctx.workspace.run_dir(self.run_id),
            device=self.ctx.session.device, resume=resume)
        # The controls first: their status line is set before the page reacts.
        self.run_controls.follow(handle, self.run_id, resume=resume)
        for name in ("metric", "snapshot", "done", "failed", "cancelled"):
            getattr(handle, name).connect(getattr(self, f"_on_{name}"))
        self.refresh_runs()

    # -- events -------------------------------------------------------------------
    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        if event.label == PLAN:
            self.curves.set_steps_per_epoch(int(event.arrays["steps_per_epoch"]))

    @Slot(object)
    def _on_metric(self, event: Metric) -> None:
        self.curves.add(event.name, event.step, event.value)
        if not self._redraw.isActive():
            self._redraw.start()

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self.curves.redraw()
        clean, attacked = results.get("psnr_clean"), results.get("psnr_attacked")
        scores = (f"test PSNR {clean:.2f} dB, under ObsAtk {attacked:.2f} dB"
                  if isinstance(clean, float) and isinstance(attacked, float) else "")
        self.status.setText(f"run {self.run_id} finished: {results.get('epochs')} "
                            f"epochs, {scores}. Weights: {results.get('best')}")
        noisy = results.get("psnr_noisy")
        worse = isinstance(clean, float) and isinstance(noisy, float) and clean < noisy
        self.hint.setText(WORSE_HINT.format(clean=clean, noisy=noisy) if worse else "")
        self.hint.setVisible(worse)
        self.finished.emit("done")

    @Slot(str)
    def _on_failed(self, _message: str) -> None:
        self.finished.emit("failed")

    @Slot()
    def _on_cancelled(self) -> None:
        self.curves.redraw()
        self.finished.emit("cancelled")
