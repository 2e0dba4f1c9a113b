"""Attack Lab: choose images and an attack, watch it work step by step.

The panel arranges widgets and starts jobs; the images, the attack form, the
live view and the batch/sweep boxes live in ``explorer.gui.widgets``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import attacks, models
from explorer.core.params import ParamError, validate
from explorer.gui.context import AppContext
from explorer.gui.panels.attack_lab.batch_box import BatchBox, JobBox
from explorer.gui.panels.attack_lab.live_box import LiveAttackBox
from explorer.gui.panels.attack_lab.sweep_box import SweepBox, default_eps_list
from explorer.gui.widgets.attack_form import AttackForm
from explorer.gui.widgets.current_model import above
from explorer.gui.widgets.image_picker import IMAGE_SUFFIXES, ImagePicker
from explorer.gui.widgets.job_controls import ERROR_STYLE
from explorer.gui.widgets.recipes import CopyRecipeButton

DEMO_DATA, DEMO_MODEL = "fashion-mnist-mini", "fmnist-cnn-standard"


class AttackLabPanel(QWidget):
    title = "Attack Lab"
    demo_finished = Signal()
    live_finished = Signal()  # a live result is on screen

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._demo: str | None = None  # None, "waiting" for data, "running"
        self._demo_loading = False
        self._auto_eps_text = ""
        self._build()
        self.setAcceptDrops(True)
        ctx.session.data_changed.connect(self.on_source_changed)
        ctx.session.model_changed.connect(self.on_source_changed)
        self.on_source_changed()

    # -- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(ERROR_STYLE)
        self.picker = ImagePicker()
        self.picker.selection_changed.connect(self._update_buttons)
        images_box = QGroupBox("Images")
        QVBoxLayout(images_box).addWidget(self.picker)

        self.attack_form = AttackForm(self.ctx.settings)
        self.attack_form.attack_changed.connect(self._on_attack_changed)
        self.attack_form.values_changed.connect(self._on_attack_values)
        form_scroll = QScrollArea()
        form_scroll.setWidget(self.attack_form)
        form_scroll.setWidgetResizable(True)
        form_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        attack_box = QGroupBox("Attack")
        QVBoxLayout(attack_box).addWidget(form_scroll)
        left = QWidget()
        left.setFixedWidth(390)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.banner)
        ll.addWidget(images_box)
        ll.addWidget(attack_box, 1)

        # Run, Cancel and Save sit above the live view they drive.
        self.live_box = LiveAttackBox(self.ctx)
        self.live_box.run_requested.connect(self.run_live)
        self.live_box.stopped.connect(self._on_live_stopped)
        self.live_box.result_shown.connect(self._on_result_shown)
        self.live = self.live_box.view
        self.run_button = self.live_box.run_button
        self.cancel_button = self.live_box.cancel_button
        self.save_button = self.live_box.save_button
        self.status = self.live_box.status
        self.copy_recipe = CopyRecipeButton(self.recipe_settings, self.status)
        self.copy_recipe.setToolTip("The Batch tab's attack (its first N images). "
                                    + self.copy_recipe.toolTip())
        ll.addWidget(self.copy_recipe)

        self.batch = BatchBox(self.ctx)
        self.batch.run_requested.connect(self.run_batch)
        self.sweep = SweepBox(self.ctx)
        self.sweep.run_requested.connect(self.run_sweep)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.live_box, "Live attack")
        self.tabs.addTab(self.batch, "Batch")
        self.tabs.addTab(self.sweep, "Accuracy vs eps")

        root = QHBoxLayout()
        self.model_strip = above(self, self.ctx, root)
        root.setContentsMargins(6, 6, 6, 6)
        root.addWidget(left)
        root.addWidget(self.tabs, 1)
        self._on_attack_changed(self.attack_form.name())

    # -- data, model and the attack ----------------------------------------------
    def problem(self) -> str | None:
        """Why nothing can be attacked now, in words; None when all is fine."""
        s = self.ctx.session
        if s.dataset is None:
            return "Choose a data set on the Data & Model page."
        shape = tuple(getattr(s.dataset.info, "shape", ()))
        if len(shape) != 3:
            return (f"'{s.data_name}' is a 2-D toy set: the Attack Lab attacks "
                    "images. Choose an image data set on the Data & Model page.")
        if s.model is None:
            return "Choose a model on the Data & Model page."
        try:
            models.check_compatible(s.model, s.dataset.info)
        except models.ModelError as exc:
            return f"The model does not fit the data: {exc}"
        return None

    @Slot()
    def on_source_changed(self) -> None:
        s = self.ctx.session
        problem = self.problem()
        self.banner.setText(problem or "")
        self.banner.setVisible(problem is not None)
        usable = problem is None
        dataset = s.dataset if usable else None
        shape = tuple(s.dataset.info.shape) if usable else None
        classes = tuple(s.dataset.classes) if s.dataset is not None else ()
        self.picker.set_source(dataset, shape, classes)
        self._update_buttons()
        if self._demo == "waiting":
            self._demo_step()

    @Slot(str)
    def _on_attack_changed(self, _name: str) -> None:
        self._on_attack_values()

    @Slot()
    def _on_attack_values(self) -> None:
        eps = self.attack_form.eps()
        self.sweep.setEnabled(eps is not None)
        self.sweep.status.setText("" if eps is not None else
                                  "This attack has no eps to sweep.")
        text = self.sweep.eps_edit.text()
        if eps is not None and (not text or text == self._auto_eps_text):
            self._auto_eps_text = default_eps_list(eps)
            self.sweep.eps_edit.setText(self._auto_eps_text)

    @Slot()
    def _update_buttons(self) -> None:
        ok = self.problem() is None
        self.run_button.setEnabled(ok and bool(self.picker.selection()) and
                                   not self.live_box.running)
        for box in (self.batch, self.sweep):
            box.run_button.setEnabled(ok and not box.running)

    def _params(self) -> dict[str, Any] | None:
        try:
            return self.attack_form.values()
        except ParamError as exc:
            self.status.setText(str(exc))
            return None

    def _config(self, params: dict[str, Any]) -> dict[str, Any]:
        s = self.ctx.session
        return {"attack": self.attack_form.name(), "params": params,
                "model": s.model_source, "data": s.data_name, "split": s.split,
                "device": str(s.device)}

    def recipe_settings(self) -> tuple[str, dict[str, Any], str]:
        """"Copy recipe": the Batch tab's attack as ``explorer attack`` records
        it (``explorer run`` reproduces it)."""
        if (problem := self.problem()) is not None:
            raise ParamError(problem)
        s = self.ctx.session
        config = {**self._config(self.attack_form.values()),
                  "n": min(self.batch.n.value(), len(s.dataset)),
                  "batch_size": batch_size_of_batch_tab(), "seed": 0}
        return "attack", config, str(s.device)

    def apply_recipe(self, recipe) -> str:
        """Fill the attack form and the Batch tab's N from an attack recipe
        (ParamError naming a bad value: nothing is changed then); a model or
        data set other than the session's is said, not loaded."""
        config = recipe.config
        name = str(config.get("attack", ""))
        params = config.get("params", {})
        if not isinstance(params, dict):
            raise ParamError(f"params must be a table, got {params!r}")
        params = validate(attacks.spec(name), params)  # unknown attack, bad value
        n = config.get("n", self.batch.n.value())
        low, high = self.batch.n.minimum(), self.batch.n.maximum()
        if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= high:
            raise ParamError(f"n must be a whole number in [{low}, {high}], "
                             f"got {n!r}")
        self.attack_form.choose(name, params)
        self.batch.n.setValue(n)
        self.tabs.setCurrentWidget(self.batch)
        said = [f"Attack Lab filled from the recipe: {name}, N = {n} (Batch tab)."]
        s = self.ctx.session
        if config.get("model") not in (None, s.model_source):
            said.append(f"It attacks {config['model']}: open it on the Data & "
                        "Model page.")
        if (config.get("data"), config.get("split", s.split)) != (s.data_name,
                                                                   s.split):
            said.append(f"It attacks {config.get('data')} "
                        f"({config.get('split', 'test')}): choose it on the "
                        "Data & Model page.")
        text = " ".join(said)
        self.status.setText(text)
        return text

    # -- live -------------------------------------------------------------------
    @Slot()
    def run_live(self) -> None:
        problem, items = self.problem(), self.picker.selection()
        if problem is not None or not items:
            self.status.setText(problem or "Select at least one image first.")
            return
        params = self._params()
        if params is None:
            return
        self.live_box.start(items, self.picker.classes(), self.attack_form.name(),
                            params, self._config(params))
        self.tabs.setCurrentIndex(0)

    @Slot()
    def _on_live_stopped(self) -> None:
        self._update_buttons()

    @Slot()
    def _on_result_shown(self) -> None:
        self.live_finished.emit()
        if self._demo == "running":
            self._demo = None
            self.demo_finished.emit()

    # -- batch and sweep ----------------------------------------------------------
    @Slot()
    def run_batch(self) -> None:
        self._start_box(self.batch)

    @Slot()
    def run_sweep(self) -> None:
        self._start_box(self.sweep)

    def _start_box(self, box: JobBox) -> None:
        problem = self.problem()
        params = None if problem else self._params()
        if params is None:
            box.status.setText(problem or self.status.text())
            return
        try:
            box.start(self.attack_form.name(), params, self._config(params))
        except ValueError as exc:
            box.status.setText(str(exc))

    # -- dropping image files ---------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if any(Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES
               for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls()
                 if Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            event.ignore()
            return
        self.picker.tabs.setCurrentIndex(2)
        for path in paths:
            if not self.picker.add_file(path):
                break
        event.acceptProposedAction()

    # -- demo (screenshots, `python -m explorer.gui.panels.attack_lab`) -----------
    def run_demo(self) -> None:
        """PGD l-inf eps 0.1, 20 steps on the first 8 test images, live."""
        self._demo = "waiting"
        self.ctx.runner.jobs_changed.connect(self._demo_step)
        self._demo_step()

    def _demo_ready(self) -> bool:
        s = self.ctx.session
        # The picker must already show this data set: other panels may react
        # to the same session signal first (and start jobs) before we do.
        return (s.dataset is not None and s.data_name == DEMO_DATA
                and s.split == "test" and s.model is not None
                and self.problem() is None and self.picker.dataset is s.dataset)

    @Slot()
    def _demo_step(self) -> None:
        if self._demo != "waiting":
            return
        if self._demo_ready():
            self._demo = "running"
            self.ctx.runner.jobs_changed.disconnect(self._demo_step)
            self.picker.select_first(8)
            self.attack_form.choose("pgd", {"eps": 0.1, "steps": 20, "norm": "linf",
                                            "alpha": 0.01, "targeted": "none"})
            self.run_live()
        elif not self._demo_loading and not self.ctx.runner.active():
            # Nobody else is loading (the panel runs alone): load the demo pair.
            self._demo_loading = True
            self._load_demo_pair()

    def _load_demo_pair(self) -> None:
        s = self.ctx.session
        if s.dataset is None or s.data_name != DEMO_DATA or s.split != "test":
            self.ctx.load_data(DEMO_DATA, "test", slot="attack/demo-data")
        if s.model is None or self.problem() is not None:
            self.ctx.load_builtin_model(DEMO_MODEL, slot="attack/demo-model")



def batch_size_of_batch_tab() -> int:
    """The batch size the Batch tab attacks with: ``attack_dataset``'s default."""
    import inspect

    from explorer.core.attacks.jobs import attack_dataset

    return int(inspect.signature(attack_dataset).parameters["batch_size"].default)
