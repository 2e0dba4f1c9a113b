"""Certify & Detect: certified radii, detectors and two-sample tests, one tab
each, on the session's model and data.

The demo (screenshots, ``python -m explorer.gui.panels.certify``) loads the
built-in data's test split and ``fmnist-cnn-gaussian`` (the standard model
when it is missing), certifies a handful of images and attacks them.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from explorer.core import models
from explorer.gui.context import AppContext
from explorer.gui.panels.certify.detect_tab import DetectTab
from explorer.gui.panels.certify.smoothing_tab import SmoothingTab
from explorer.gui.panels.certify.two_sample_tab import TwoSampleTab
from explorer.gui.widgets.current_model import above

DEMO_DATA = "fashion-mnist-mini"
DEMO_MODELS = ("fmnist-cnn-gaussian", "fmnist-cnn-standard")  # first present
DEMO_SETTINGS = {"sigma": 0.25, "samples0": 50, "samples": 1000, "alpha": 0.001,
                 "images": 12}
DEMO_ATTACK = {"steps": 5, "eot": 2, "predict_samples": 50}


class CertifyPanel(QWidget):
    title = "Certify & Detect"
    demo_finished = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._demo: str | None = None  # None, "waiting" for data/model, "running"
        self._demo_loading = False
        self.smoothing = SmoothingTab(ctx)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.smoothing, "Randomized smoothing")
        self.detect = DetectTab(ctx)
        self.tabs.addTab(self.detect, "Detectors")
        self.two_sample = TwoSampleTab(ctx)
        self.tabs.addTab(self.two_sample, "Two-sample tests")
        box = QVBoxLayout()
        self.model_strip = above(self, ctx, box)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(self.tabs)
        self.smoothing.certified.connect(self._on_certified)
        self.smoothing.attacked.connect(self._on_attacked)

    @property
    def running(self) -> bool:
        return (self.smoothing.running or self.smoothing.attack_running
                or self.detect.running or self.two_sample.running)

    def cancel(self) -> None:
        for tab in (self.smoothing, self.detect, self.two_sample):
            tab.cancel()

    # -- demo (screenshots, `python -m explorer.gui.panels.certify`) -------------
    def demo_model(self) -> str:
        present = models.builtin_names()
        return next((m for m in DEMO_MODELS if m in present), DEMO_MODELS[-1])

    def run_demo(self) -> None:
        """Certify 12 test images (n 1000) with the Gaussian built-in, then
        attack them with PGD-l2."""
        self._demo, self._demo_loading = "waiting", False
        self.tabs.setCurrentWidget(self.smoothing)
        self.ctx.runner.jobs_changed.connect(self._demo_step)
        self._demo_step()

    @Slot()
    def _demo_step(self) -> None:
        if self._demo != "waiting":
            return
        s, model = self.ctx.session, self.demo_model()
        if (s.data_name == DEMO_DATA and s.split == "test"
                and s.model_source == model and self.smoothing.problem() is None):
            self._demo = "running"
            self.ctx.runner.jobs_changed.disconnect(self._demo_step)
            self.smoothing.form.set_values(DEMO_SETTINGS)
            self.smoothing.attack_form.set_values(DEMO_ATTACK)
            self.smoothing.run()
        elif not self._demo_loading and not self.ctx.runner.active():
            self._demo_loading = True
            if s.data_name != DEMO_DATA or s.split != "test":
                self.ctx.load_data(DEMO_DATA, "test", slot="certify/demo-data")
            if s.model_source != model:
                self.ctx.load_builtin_model(model, slot="certify/demo-model")

    @Slot(dict)
    def _on_certified(self, _results: dict) -> None:
        if self._demo == "running":
            self.smoothing.run_attack()

    @Slot(dict)
    def _on_attacked(self, _results: dict) -> None:
        if self._demo == "running":
            self._demo = None
            self.smoothing.choose_image(0)
            self.demo_finished.emit()
