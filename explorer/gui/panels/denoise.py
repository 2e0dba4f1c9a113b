"""Denoiser Lab: ObsAtk against denoisers, live, and training them (HAT).

Attack tab: ``obsatk_rows`` on the chosen images (a row per denoiser, a
scrubber through the steps), then ``psnr_vs_rho``. Train tab: DenoiseTrainBox.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import denoise
from explorer.core.jobs import Progress, Snapshot
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.denoise_jobs import SEP, obsatk_rows
from explorer.gui.widgets.baseline_table import BaselineTable
from explorer.gui.widgets.denoise_form import DenoiseForm, rms_text
from explorer.gui.widgets.denoise_rows import DenoiseRows
from explorer.gui.widgets.denoise_train_box import DenoiseTrainBox
from explorer.gui.widgets.denoiser_list import DenoiserList
from explorer.gui.widgets.image_picker import ImagePicker
from explorer.gui.widgets.rho_curve import RhoCurve, RhoSweep

DEMO_DATA = "fashion-mnist-mini"
ERROR_STYLE = "color: #b00020; font-weight: 600;"
SWEEP_N = 32
LIVE_SNAPSHOTS = 50  # at most this many steps kept for the scrubber


class DenoiserLabPanel(QWidget):
    title = "Denoiser Lab"
    demo_finished = Signal()
    attack_finished = Signal()  # a live result is on screen
    sweep_finished = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.attack_job = None
        self._models, self._values = {}, {}
        self.sweep_n = SWEEP_N  # images of the PSNR-vs-rho sweep
        self._demo: str | None = None  # None, "waiting" for data, "running"
        self._demo_loading = False
        self._build()
        ctx.session.data_changed.connect(self.on_data_changed)
        self.on_data_changed()

    # -- layout -------------------------------------------------------------------
    def _build(self) -> None:
        self.banner = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)
        self.picker = ImagePicker()
        self.picker.selection_changed.connect(self._update_buttons)
        self.denoisers = DenoiserList()
        self.denoisers.changed.connect(self._update_buttons)
        self.form = DenoiseForm()
        self.sweep_check = QCheckBox(f"then PSNR vs ρ on the first {SWEEP_N} images")
        self.sweep_check.setChecked(True)
        self.run_button = QPushButton("Run ObsAtk")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.run_button.clicked.connect(self.run_attack)
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel("Select images and denoisers, then Run.", wordWrap=True)
        left = QWidget()
        left.setFixedWidth(360)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        for title, widget in (("Images", self.picker), ("Denoisers", self.denoisers),
                              ("Noise and ObsAtk", self.form)):
            box = QGroupBox(title)
            QVBoxLayout(box).addWidget(widget)
            ll.addWidget(box)
        ll.addWidget(self.sweep_check)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.cancel_button):
            buttons.addWidget(button)
        ll.addLayout(buttons)
        ll.addWidget(self.status)
        ll.addStretch(1)
        left_scroll = QScrollArea(frameShape=QScrollArea.Shape.NoFrame)
        left_scroll.setWidget(left)
        left_scroll.setFixedWidth(380)

        self.rows = DenoiseRows()
        rows_scroll = QScrollArea()
        rows_scroll.setWidget(self.rows)
        rows_scroll.setWidgetResizable(True)
        self.table = BaselineTable()
        self.curve = RhoCurve()
        self.sweep = RhoSweep(self.ctx, self.curve, self)
        self.sweep.message.connect(self.status.setText)
        self.sweep.done.connect(self._on_sweep_done)
        self.sweep.stopped.connect(self._update_buttons)
        self.form.rms_changed.connect(self.curve.set_marker)
        self.rows.footer.addWidget(self.table)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(rows_scroll)
        right.addWidget(self.curve)
        right.setSizes([400, 300])
        attack_tab = QWidget()
        at = QHBoxLayout(attack_tab)
        at.setContentsMargins(0, 0, 0, 0)
        at.addWidget(left_scroll)
        at.addWidget(right, 1)
        self.train_box = DenoiseTrainBox(self.ctx)
        self.tabs = QTabWidget()
        self.tabs.addTab(attack_tab, "Attack")
        self.tabs.addTab(self.train_box, "Train")
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        root.addWidget(self.banner)
        root.addWidget(self.tabs, 1)
        self.curve.set_marker(self.form.rms())

    # -- data -----------------------------------------------------------------------
    def problem(self) -> str | None:
        s = self.ctx.session
        if s.dataset is None:
            return "Choose a data set on the Data & Model page."
        if len(tuple(getattr(s.dataset.info, "shape", ()))) != 3:
            return (f"'{s.data_name}' is a 2-D toy set: denoisers work on images. "
                    "Choose an image data set on the Data & Model page.")
        return None

    @Slot()
    def on_data_changed(self) -> None:
        s, problem = self.ctx.session, self.problem()
        self.banner.setText(problem or "")
        self.banner.setVisible(problem is not None)
        shape = tuple(s.dataset.info.shape) if problem is None else None
        classes = tuple(s.dataset.classes) if problem is None else ()
        self.picker.set_source(s.dataset if shape else None, shape, classes)
        self.form.set_shape(shape)
        self.train_box.problem = problem or ""
        self._update_buttons()

    @Slot()
    def _update_buttons(self) -> None:
        self.run_button.setEnabled(not self.running and self.problem() is None)
        self.cancel_button.setEnabled(self.running)

    @property
    def running(self) -> bool:
        return self.sweep.running or (self.attack_job is not None
                                      and self.attack_job.running)

    # -- the live attack ---------------------------------------------------------------
    def _prepare(self) -> tuple[dict, torch.Tensor, dict] | str:
        """Denoisers, images and values, or a message saying what is wrong."""
        problem, items = self.problem(), self.picker.selection()
        names = self.denoisers.checked()
        if problem or not items or not names:
            return problem or ("Select at least one image first." if not items
                               else "Check at least one denoiser.")
        try:
            values = self.form.values()
            models = self.denoisers.models(names)
            x = torch.from_numpy(np.stack([item.x for item in items]))
            for name, model in models.items():
                try:
                    denoise.check_input(model, x)
                except denoise.DenoiserError as exc:
                    raise denoise.DenoiserError(f"{name}: {exc}") from None
        except (ParamError, denoise.DenoiserError, ValueError) as exc:
            return str(exc)
        device = self.ctx.session.device
        models = {n: m.to(device).eval() for n, m in models.items()}
        return models, x.to(device), values

    @Slot()
    def run_attack(self) -> None:
        prepared = self._prepare()
        if isinstance(prepared, str):
            self.status.setText(prepared)
            return
        self.cancel()
        models, x, values = prepared
        self._models, self._values = models, values
        self.rows.reset(list(models), len(x))
        self.table.set_results({})
        every = max(1, values["steps"] // LIVE_SNAPSHOTS)
        self.attack_job = self.ctx.runner.start(
            obsatk_rows, name="ObsAtk on denoisers", slot="denoise/attack",
            job_args=(models, x), every=every, **values)
        for name in ("snapshot", "progress", "done", "failed", "cancelled",
                     "finished"):
            getattr(self.attack_job, name).connect(getattr(self, f"_on_attack_{name}"))
        self.status.setText("running ObsAtk…")
        self._update_buttons()

    @Slot(object)
    def _on_attack_snapshot(self, event: Snapshot) -> None:
        name, _, label = event.label.partition(SEP)
        self.rows.add_snapshot(name, Snapshot(event.step, event.total, event.arrays,
                                              label))

    @Slot(object)
    def _on_attack_progress(self, event: Progress) -> None:
        self.status.setText(f"{event.label}…")

    @Slot(dict)
    def _on_attack_done(self, results: dict) -> None:
        self.rows.repaint_now()
        per = results["denoisers"]  # Qt sorted its keys: rows in the chosen order
        self.table.set_results({n: per[n] for n in self._models if n in per})
        self.status.setText(f"ObsAtk done: {results['steps']} steps at "
                            f"{rms_text(self.form.rms(), self.form.shape)}.")
        self.attack_finished.emit()
        if self.sweep_check.isChecked():
            self.sweep.start(self._models, self.ctx.session.dataset, self._values,
                             self.sweep_n)  # buttons: _on_attack_finished follows
        elif self._demo == "running":
            self._finish_demo()

    @Slot()
    def _on_attack_cancelled(self) -> None:
        self.status.setText("Cancelled.")  # after any progress still queued

    @Slot(str)
    def _on_attack_failed(self, message: str) -> None:
        self.status.setText(f"ObsAtk failed: {message}")

    @Slot()
    def _on_attack_finished(self) -> None:
        self.attack_job = None
        self._update_buttons()

    @Slot()
    def _on_sweep_done(self) -> None:
        self.status.setText(f"Done: ObsAtk live, and PSNR vs ρ on the first "
                            f"{self.sweep_n} images.")
        self.sweep_finished.emit()
        if self._demo == "running":
            self._finish_demo()

    @Slot()
    def cancel(self) -> None:
        if self.running:
            self.status.setText("Cancelled.")
        if self.attack_job is not None:
            self.attack_job.cancel()
        self.sweep.cancel()

    # -- demo (screenshots, `python -m explorer.gui.panels.denoise`) -----------
    def run_demo(self) -> None:
        """The built-in denoisers on 4 test images, sigma 0.1, ObsAtk at RMS
        4/255 with 20 steps, then a short PSNR-vs-rho sweep."""
        self._demo, self._demo_loading = "waiting", False
        self.ctx.runner.jobs_changed.connect(self._demo_step)
        self._demo_step()

    @Slot()
    def _demo_step(self) -> None:
        s = self.ctx.session
        if self._demo != "waiting" or self.ctx.runner.active():
            return  # wait until whoever loads data at start-up is done
        if s.data_name == DEMO_DATA and s.split == "test" and \
                self.picker.dataset is s.dataset:
            self._demo = "running"
            self.ctx.runner.jobs_changed.disconnect(self._demo_step)
            self._demo_attack()
        elif not self._demo_loading:
            self._demo_loading = True
            self.ctx.load_data(DEMO_DATA, "test", slot="denoise/demo-data")

    def _demo_attack(self) -> None:
        if not self.denoisers.names():  # no built-ins shipped: show the idea anyway
            self.denoisers.add_model("untrained dncnn", denoise.create("dncnn"))
        self.denoisers.set_checked(self.denoisers.names())
        self.picker.select_first(4)
        self.form.choose("gaussian", 0.1, 4 / 255, 20)
        self.sweep_check.setChecked(True)
        self.run_attack()

    def _finish_demo(self) -> None:
        self._demo = None
        self.demo_finished.emit()


if __name__ == "__main__":
    from explorer.gui.preview import preview

    raise SystemExit(preview("denoise"))
