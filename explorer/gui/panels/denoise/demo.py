"""The Denoiser Lab's demo (screenshots, ``python -m explorer.gui.panels.denoise``):
the built-in denoisers on 4 test images of the demo data, sigma 0.1, ObsAtk
at RMS 4/255 with 20 steps, then a short PSNR-vs-rho sweep."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from explorer.core import denoise
from explorer.core.denoise.files import builtins_for

if TYPE_CHECKING:
    from explorer.gui.panels.denoise.panel import DenoiserLabPanel

DEMO_DATA = "fashion-mnist-mini"


class DenoiseDemo(QObject):
    """Waits until start-up loads are done, loads the demo data, runs the
    attack; the panel calls :meth:`finish` when its result is on screen."""

    def __init__(self, panel: DenoiserLabPanel) -> None:
        super().__init__(panel)
        self.panel = panel
        self.state: str | None = None  # None, "waiting" for data, "running"
        self.loading = False

    def start(self) -> None:
        self.state, self.loading = "waiting", False
        self.panel.ctx.runner.jobs_changed.connect(self.step)
        self.step()

    @Slot()
    def step(self) -> None:
        panel, ctx = self.panel, self.panel.ctx
        s = ctx.session
        if self.state != "waiting" or ctx.runner.active():
            return  # wait until whoever loads data at start-up is done
        if s.data_name == DEMO_DATA and s.split == "test" and \
                panel.picker.dataset is s.dataset:
            self.state = "running"
            ctx.runner.jobs_changed.disconnect(self.step)
            self._attack()
        elif not self.loading:
            self.loading = True
            ctx.load_data(DEMO_DATA, "test", slot="denoise/demo-data")

    def _attack(self) -> None:
        panel = self.panel
        if not panel.denoisers.names():  # no built-ins shipped: show the idea anyway
            panel.denoisers.add_model("untrained dncnn", denoise.create("dncnn"))
        # the built-ins trained for the demo data (all denoisers when none is)
        names = panel.denoisers.names()
        panel.denoisers.set_checked([n for n in builtins_for(DEMO_DATA) if n in names]
                                    or names)
        panel.picker.select_first(4)
        panel.form.choose("gaussian", 0.1, 4 / 255, 20)
        panel.sweep_check.setChecked(True)
        panel.run_attack()

    def finish(self) -> None:
        """The demo's result is on screen (nothing happens outside a demo)."""
        if self.state == "running":
            self.state = None
            self.panel.demo_finished.emit()
