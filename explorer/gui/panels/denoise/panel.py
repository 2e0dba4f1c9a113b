"""Denoiser Lab: ObsAtk against denoisers, live, and training them (HAT).

Attack tab: ``obsatk_rows`` on the chosen images (a row per denoiser, a
scrubber through the steps), then ``psnr_vs_rho``; or, with the noise choice
"real image", ``obsatk_real_rows`` on a user's file (RealImageBox). Train
tab: DenoiseTrainBox. Defend a classifier tab: ClassifierDefenseBox.
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
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import denoise
from explorer.core.denoise.runs import SEP, obsatk_real_rows, obsatk_rows
from explorer.core.jobs import Progress, Snapshot
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.panels.denoise.attack_form import DenoiseForm, rms_text
from explorer.gui.panels.denoise.baseline_table import BaselineTable
from explorer.gui.panels.denoise.classifier_box import ClassifierDefenseBox
from explorer.gui.panels.denoise.demo import DenoiseDemo
from explorer.gui.panels.denoise.denoiser_list import DenoiserList
from explorer.gui.panels.denoise.real_image import (
    REFERENCE_FREE_TIP,
    RealImageBox,
    summary,
)
from explorer.gui.panels.denoise.rho_curve import RhoCurve, RhoSweep
from explorer.gui.panels.denoise.rows import DenoiseRows
from explorer.gui.panels.denoise.train_box import DenoiseTrainBox
from explorer.gui.widgets.current_model import above
from explorer.gui.widgets.image_picker import ImagePicker
from explorer.gui.widgets.job_controls import ERROR_STYLE, JobControls

SWEEP_N = 32
PICKER_IMAGES = 24  # three rows of thumbnails: the column fits at 800 px high
LIVE_SNAPSHOTS = 50  # at most this many steps kept for the scrubber
NOISE_KEY = "denoise/noise"  # settings: the last noise choice


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
        self.demo = DenoiseDemo(self)
        self._build()
        ctx.session.data_changed.connect(self.on_data_changed)
        self.on_data_changed()

    # -- layout -------------------------------------------------------------------
    def _build(self) -> None:
        self.banner = QLabel(wordWrap=True, styleSheet=ERROR_STYLE)
        self.picker = ImagePicker(grid_images=PICKER_IMAGES)
        self.picker.selection_changed.connect(self._update_buttons)
        self.denoisers = DenoiserList()
        self.denoisers.changed.connect(self._on_noise_source)
        self.form = DenoiseForm()
        self.real_box = RealImageBox(self.ctx.settings)
        self.real_box.hide()  # shown with the real-image noise choice
        self.sweep_check = QCheckBox(f"then PSNR vs ρ on the first {SWEEP_N} images")
        self.sweep_check.setChecked(True)
        self.controls = JobControls("Run ObsAtk")
        self.controls.run_requested.connect(self.run_attack)
        self.controls.finished.connect(self._update_buttons)
        self.run_button = self.controls.run_button
        self.run_button.setDefault(True)
        self.cancel_button = self.controls.cancel_button
        self.cancel_button.clicked.connect(self.cancel)  # the attack and the sweep
        self.status = self.controls.status
        self.status.setText("Select images and denoisers, then Run.")
        left = QWidget()
        left.setFixedWidth(360)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.boxes = {}
        for title, widgets in (("Images", [self.picker]),
                               ("Denoisers", [self.denoisers]),
                               ("Noise and ObsAtk", [self.form, self.real_box])):
            self.boxes[title] = box = QGroupBox(title)
            box_layout = QVBoxLayout(box)
            for widget in widgets:
                box_layout.addWidget(widget)
            ll.addWidget(box)
        ll.addWidget(self.sweep_check)
        ll.addWidget(self.controls)
        ll.addStretch(1)
        left_scroll = QScrollArea(frameShape=QScrollArea.Shape.NoFrame)
        left_scroll.setWidget(left)
        # Resizable: the column grows when the picker fills with images
        # (scrolling if it must) instead of squeezing the thumbnails flat.
        left_scroll.setWidgetResizable(True)
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
        self.defense = ClassifierDefenseBox(self.ctx, self.denoisers, self.form,
                                            self.problem)
        self.tabs.addTab(self.defense, "Defend a classifier")
        root = QVBoxLayout()
        self.model_strip = above(self, self.ctx, root)
        root.setContentsMargins(6, 6, 6, 6)
        root.addWidget(self.banner)
        root.addWidget(self.tabs, 1)
        self.curve.set_marker(self.form.rms())
        self.form.kind.setCurrentText(str(self.ctx.settings.value(NOISE_KEY, "")))
        self.form.kind_changed.connect(self._on_noise_source)
        self.real_box.changed.connect(self._on_noise_source)

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
        shape = tuple(s.dataset.info.shape) if problem is None else None
        classes = tuple(s.dataset.classes) if problem is None else ()
        self.picker.set_source(s.dataset if shape else None, shape, classes)
        self.denoisers.check_for_data(s.data_name if problem is None else None)
        self.train_box.problem = problem or ""
        self._on_noise_source()

    @Slot()
    def _on_noise_source(self) -> None:
        """Synthetic noise on the chosen images, or a real noisy image file."""
        real, problem = self.form.is_real(), self.problem()
        self.ctx.settings.setValue(NOISE_KEY, self.form.kind.currentText())
        # a real image needs no data set; only the Train tab still does
        self.banner.setText(f"Only for training: {problem}" if real and problem
                            else problem or "")
        self.banner.setVisible(problem is not None)
        self.real_box.setVisible(real)
        self.boxes["Images"].setVisible(not real)  # the file is the image
        self.sweep_check.setEnabled(not real)  # the sweep needs clean images
        self.curve.setVisible(not real)
        self.form.set_shape(self.real_box.shape_for(self.denoisers) if real else (
            tuple(self.ctx.session.dataset.info.shape) if problem is None
            else None))
        self._update_buttons()

    @Slot()
    def _update_buttons(self) -> None:
        ready = self.form.is_real() or self.problem() is None
        self.controls.set_run_enabled(ready and not self.running)

    @property
    def running(self) -> bool:
        return self.sweep.running or (self.attack_job is not None
                                      and self.attack_job.running)

    # -- the live attack ---------------------------------------------------------------
    def _prepare(self) -> tuple[dict, torch.Tensor | tuple, dict] | str:
        """Denoisers, images (or a real image's paths) and values, or a
        message saying what is wrong."""
        real = self.form.is_real()
        problem = self.real_box.problem() if real else self.problem()
        items = [] if real else self.picker.selection()
        names = self.denoisers.checked()
        if problem or not (items or real) or not names:
            return problem or ("Check at least one denoiser." if real or items
                               else "Select at least one image first.")
        try:
            values = self.form.values()
            models = self.denoisers.models(names)
            if real:  # the job reads the file, as each denoiser takes it
                return ({n: m.to(self.ctx.session.device).eval()
                         for n, m in models.items()}, self.real_box.paths(), values)
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
        real = isinstance(x, tuple)
        self.rows.reset(list(models), 1 if real else len(x))
        self.rows.set_reference_free(REFERENCE_FREE_TIP if real and x[1] is None
                                     else "")
        self.table.set_results({})
        every = max(1, values["steps"] // LIVE_SNAPSHOTS)
        self.attack_job = self.ctx.runner.start(
            obsatk_real_rows if real else obsatk_rows, name="ObsAtk on denoisers",
            slot="denoise/attack", job_args=(models, *(x if real else (x,))),
            every=every, **values)
        self.controls.follow(self.attack_job, "running ObsAtk…")
        for name in ("snapshot", "progress", "done", "failed", "cancelled",
                     "finished"):
            getattr(self.attack_job, name).connect(getattr(self, f"_on_attack_{name}"))
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
        per = {n: per[n] for n in self._models if n in per}
        self.table.set_results(per, REFERENCE_FREE_TIP)
        self.status.setText(f"ObsAtk done: {results['steps']} steps at "
                            f"{rms_text(self.form.rms(), self.form.shape)}.")
        if "reference" in results:  # a real image: no sweep over clean images
            self.status.setText(f"{self.status.text()}\n{summary(per)}")
        self.attack_finished.emit()
        if self.sweep_check.isChecked() and "reference" not in results:
            self.sweep.start(self._models, self.ctx.session.dataset, self._values,
                             self.sweep_n)
            self.controls.follow(self.sweep.job, "PSNR vs ρ…")
        else:
            self.demo.finish()

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
        self.demo.finish()

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
        self.demo.start()

