"""Look Inside: image-space slices, loss landscapes, feature spaces and, for
models with a CIFS block, channel importances clean vs adversarial.

The panel picks the image, starts the analysis jobs of
``explorer.core.analysis`` (each result saved as ``.npz`` in its workspace
run folder) and reloads saved results; the tabs' forms and views live in
this package (slice_view, landscape_view, feature_view, channel_view).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import models
from explorer.core.analysis.channels import NO_BLOCK
from explorer.core.analysis.result_files import ResultFileError, load_npz
from explorer.core.analysis.result_jobs import (
    channels_of,
    features_of,
    landscape_of,
    slice_with_builtins,
)
from explorer.core.models import cifs
from explorer.gui.context import AppContext
from explorer.gui.panels.inside.channel_view import ChannelForm, ChannelView
from explorer.gui.panels.inside.feature_view import FeatureForm, FeatureView
from explorer.gui.panels.inside.landscape_view import LandscapeForm, LandscapeView
from explorer.gui.panels.inside.result_tab import ResultTab
from explorer.gui.panels.inside.slice_view import SliceForm, SliceView, class_name
from explorer.gui.widgets.current_model import above
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc
from explorer.gui.widgets.job_controls import ERROR_STYLE

DEMO_DATA, DEMO_MODEL, DEMO_OTHER = ("fashion-mnist-mini", "fmnist-cnn-standard",
                                     "fmnist-cnn-pgdat")
GRID_IMAGES = 24
TAB_OF_KIND = {"slice": "slice", "weights-1d": "landscape", "weights-2d": "landscape",
               "input": "landscape", "features": "features", "channels": "cifs"}


class InsidePanel(QWidget):
    title = "Look Inside"
    demo_finished = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.index = 0
        self._demo: str | None = None  # None, "waiting" for data, "running"
        self._demo_loading = False
        self._build()
        ctx.session.data_changed.connect(self.on_source_changed)
        ctx.session.model_changed.connect(self.on_source_changed)
        self.on_source_changed()

    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(ERROR_STYLE)
        self.grid = ImageGrid(columns=6, tile=28)
        self.grid.clicked.connect(self.choose_image)
        self.chosen = QLabel()
        self.chosen.setWordWrap(True)
        images = QGroupBox("Image (slices, input landscape)")
        il = QVBoxLayout(images)
        il.addWidget(self.grid)
        il.addWidget(self.chosen)
        self.open_button = QPushButton("Open result…")
        self.open_button.setToolTip("Reload a saved slice, landscape or feature "
                                    "result (.npz)")
        self.open_button.clicked.connect(self.choose_result)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet(ERROR_STYLE)
        left = QWidget()
        left.setFixedWidth(260)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        for w in (self.banner, images, self.open_button, self.message):
            ll.addWidget(w)
        ll.addStretch(1)
        self.slice_form, self.slice_view = SliceForm(), SliceView()
        self.landscape_form, self.landscape_view = LandscapeForm(), LandscapeView()
        self.feature_form, self.feature_view = FeatureForm(), FeatureView()
        self.channel_form, self.channel_view = ChannelForm(), ChannelView()
        self.tab = {
            "slice": ResultTab(self.slice_form, self.slice_view, "Compute slice"),
            "landscape": ResultTab(self.landscape_form, self.landscape_view,
                                   "Compute landscape"),
            "features": ResultTab(self.feature_form, self.feature_view,
                                  "Project features"),
            "cifs": ResultTab(self.channel_form, self.channel_view,
                              "Compare importances"),
        }
        self.tabs = QTabWidget()
        for key, title in (("slice", "Image-space slice"),
                           ("landscape", "Loss landscape"),
                           ("features", "Feature space"),
                           ("cifs", "Channel importance (CIFS)")):
            self.tabs.addTab(self.tab[key], title)
        self.tab["slice"].controls.run_requested.connect(self.run_slice)
        self.tab["landscape"].controls.run_requested.connect(self.run_landscape)
        self.tab["features"].controls.run_requested.connect(self.run_features)
        self.tab["cifs"].controls.run_requested.connect(self.run_channels)
        self.tab["slice"].result_shown.connect(self._on_slice_shown)
        root = QHBoxLayout()
        self.model_strip = above(self, self.ctx, root)
        root.setContentsMargins(6, 6, 6, 6)
        root.addWidget(left)
        root.addWidget(self.tabs, 1)

    # -- data, model and the image ------------------------------------------------
    def problem(self) -> str | None:
        """Why nothing can be computed now, in words; None when all is fine."""
        s = self.ctx.session
        if s.dataset is None:
            return "Choose a data set on the Data & Model page."
        if len(tuple(getattr(s.dataset.info, "shape", ()))) != 3:
            return (f"'{s.data_name}' is a 2-D toy set: slices, landscapes and "
                    "feature views need images. Choose an image data set on the "
                    "Data & Model page (the Playground shows toy boundaries).")
        if s.model is None:
            return "Choose a model on the Data & Model page."
        try:
            models.check_compatible(s.model, s.dataset.info)
        except models.ModelError as exc:
            return f"The model does not fit the data: {exc}"
        return None

    def classes(self) -> list[str]:
        return list(getattr(self.ctx.session.dataset, "classes", []) or [])

    @Slot()
    def on_source_changed(self) -> None:
        s, problem = self.ctx.session, self.problem()
        self.banner.setText(problem or "")
        self.banner.setVisible(problem is not None)
        self.slice_form.set_builtins(models.builtin_names(), exclude=s.model_source)
        images, captions = [], []
        if problem is None:
            for i in range(min(GRID_IMAGES, len(s.dataset))):
                x, y = s.dataset[i]
                images.append(chw_to_hwc(x.numpy()))
                captions.append(class_name(self.classes(), int(y)))
        self.grid.set_images(images, captions)
        has_block = s.model is not None and bool(cifs.blocks(s.model))
        self.channel_form.note.setText("" if has_block else NO_BLOCK)
        self.channel_form.note.setVisible(not has_block)
        self.tab["cifs"].controls.set_run_enabled(has_block)
        keep = 0 <= self.index < len(images)
        self.choose_image(self.index if keep else (0 if images else -1))
        if self._demo == "waiting":
            self._demo_step()

    @Slot(int)
    def choose_image(self, index: int) -> None:
        self.index = index
        self.grid.set_marked([index] if index >= 0 else [])
        ok = 0 <= index < len(self.grid.captions)
        self.chosen.setText(f"image #{index}: {self.grid.captions[index]}" if ok
                            else "No image to choose.")

    # -- starting jobs ------------------------------------------------------------
    def _start(self, key: str, job, job_args: tuple, kwargs: dict[str, Any],
               config: dict[str, Any], names: list[str], text: str) -> None:
        s = self.ctx.session
        config = {**config, "model": s.model_source, "data": s.data_name,
                  "split": s.split, "device": str(s.device)}
        kind = {"slice": "boundary"}.get(key, key)
        recorder = self.ctx.run_recorder(kind, config, title=text)
        path = (self.ctx.workspace.run_dir(recorder.run_id) / f"{kind}.npz"
                if recorder is not None and self.ctx.workspace is not None else None)
        meta = {**config, "classes": self.classes(), "models": names}
        handle = self.ctx.runner.start(job, name=text, slot=f"inside/{key}",
                                       job_args=job_args, recorder=recorder,
                                       path=path, meta=meta, **kwargs)
        self.tab[key].follow(handle, meta, f"{text}…")

    def _refuse(self, key: str, needs_image: bool = False) -> bool:
        problem = self.problem()
        if problem is None and needs_image and self.index < 0:
            problem = "Click an image on the left first."
        self.tab[key].controls.status.setText(problem or "")
        return problem is not None

    @Slot()
    def run_slice(self) -> None:
        if self._refuse("slice", needs_image=True):
            return
        s, v = self.ctx.session, self.slice_form.values()
        extras = self.slice_form.extra_models()
        x, y = s.dataset[self.index]
        config = {**v, "directions": list(v["directions"]), "index": self.index,
                  "extra_models": extras}
        self._start("slice", slice_with_builtins, (s.model, extras, x, int(y)),
                    {**v, "device": s.device}, config, [s.model_source, *extras],
                    f"slice through image #{self.index}")

    @Slot()
    def run_landscape(self) -> None:
        v = self.landscape_form.values()
        if self._refuse("landscape", needs_image=v["space"] == "input"):
            return
        s = self.ctx.session
        if v["space"] == "weights" and v.get("other") == "" and \
                self.landscape_form.between.isChecked():
            self.tab["landscape"].controls.status.setText(
                "Choose the other checkpoint's file first.")
            return
        self._start("landscape", landscape_of, (s.model, s.dataset, self.index), v,
                    {**v, "index": self.index}, [s.model_source],
                    f"{v['space']} landscape")

    @Slot()
    def run_features(self) -> None:
        if self._refuse("features"):
            return
        s, v = self.ctx.session, self.feature_form.values()
        kwargs = {k: v[k] for k in ("method", "adversarial", "eps", "perplexity")}
        self._start("features", features_of, (s.model, s.dataset, v["n"]), kwargs,
                    v, [s.model_source], f"{v['method']} of {v['n']} images")

    @Slot()
    def run_channels(self) -> None:
        if self._refuse("cifs", needs_image=True):
            return
        s, v = self.ctx.session, self.channel_form.values()
        if not cifs.blocks(s.model):
            self.tab["cifs"].controls.status.setText(NO_BLOCK)
            return
        x, y = s.dataset[self.index]
        self._start("cifs", channels_of, (s.model, x, int(y)),
                    {**v, "seed": 0}, {**v, "index": self.index},
                    [s.model_source],
                    f"CIFS channels of image #{self.index}")

    # -- reloading ------------------------------------------------------------------
    @Slot()
    def choose_result(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open result", "",
                                              "Results (*.npz)")
        if path:
            self.open_result(path)

    def open_result(self, path: str | Path) -> bool:
        """Show a saved result in its tab; False (and a message naming the
        file) when it cannot be read."""
        try:
            result = load_npz(path)
        except ResultFileError as exc:
            self.message.setText(str(exc))
            return False
        key = TAB_OF_KIND[result["kind"]]
        try:
            self.tab[key].show_result(result, f"Opened {Path(path).name}.")
        except (KeyError, IndexError, ValueError) as exc:
            self.message.setText(f"{path}: cannot be drawn ({exc})")
            return False
        self.message.setText("")
        self.tabs.setCurrentWidget(self.tab[key])
        return True

    # -- demo (screenshots, `python -m explorer.gui.panels.inside`) ----------------
    def run_demo(self) -> None:
        """A 61×61 slice through a test image: standard vs PGD-AT model."""
        self._demo = "waiting"
        self.ctx.runner.jobs_changed.connect(self._demo_step)
        self._demo_step()

    @Slot()
    def _demo_step(self) -> None:
        if self._demo != "waiting":
            return
        s = self.ctx.session
        if (s.data_name == DEMO_DATA and s.split == "test"
                and s.model_source == DEMO_MODEL and self.problem() is None):
            self._demo = "running"
            self.ctx.runner.jobs_changed.disconnect(self._demo_step)
            self.choose_image(0)
            self.slice_form.grid.setValue(61)
            self.slice_form.check_models([DEMO_OTHER])
            self.run_slice()
        elif not self._demo_loading and not self.ctx.runner.active():
            self._demo_loading = True
            if s.data_name != DEMO_DATA or s.split != "test":
                self.ctx.load_data(DEMO_DATA, "test", slot="inside/demo-data")
            if s.model_source != DEMO_MODEL:
                self.ctx.load_builtin_model(DEMO_MODEL, slot="inside/demo-model")

    @Slot()
    def _on_slice_shown(self) -> None:
        if self._demo == "running":
            self._demo = None
            self.demo_finished.emit()

