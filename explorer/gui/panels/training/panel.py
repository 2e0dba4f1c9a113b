"""Training: choose a defense, train in the background, watch and compare.

The job is :func:`explorer.core.defenses.run_job.train_run`, recorded as a
workspace run of kind ``train`` with the CLI's config (so ``explorer train
--resume`` continues a run started here). The best checkpoint and the
overfitting alarms follow the validation figures (held-out training images);
the test figures are drawn beside them and choose nothing.

"run: separate process(es)" starts ``explorer train ... --json`` under
torchrun instead (:mod:`explorer.core.launch`, "processes: N" and the
devices from the :class:`ProcessesBox`): the child records the run itself,
its JSON lines feed the same curves, strip and progress, and Stop ends its
process group (its ``last.pt`` stays, Resume continues it the same way)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.defenses import alarms
from explorer.core.defenses.alarm_scope import AlarmScope, scope
from explorer.core.defenses.best_weights import BEST_FILES, best_file
from explorer.core.defenses.config import TrainingConfig
from explorer.core.defenses.evaluation import STRIP
from explorer.core.defenses.registry import figure_name, selection_key
from explorer.core.defenses.run_job import PLAN, run_title, train_run
from explorer.core.jobs import Metric, Snapshot
from explorer.core.launch import launch_job, run_id_of
from explorer.core.params import ParamError
from explorer.core.training.precision import check_device
from explorer.core.training.split import VAL_FRACTION
from explorer.gui.context import AppContext
from explorer.gui.panels.training.adversarial_strip import AdversarialStrip
from explorer.gui.panels.training.alarm_banner import AlarmBanner, rich_tip
from explorer.gui.panels.training.form import TrainingForm
from explorer.gui.panels.training.run_list import RESUMABLE, RunList, best_text
from explorer.gui.widgets.current_model import above
from explorer.gui.widgets.job_controls import ERROR_STYLE
from explorer.gui.widgets.processes_box import ProcessesBox, close_dangling
from explorer.gui.widgets.recipes import CopyRecipeButton
from explorer.gui.widgets.recorder import RecordControl
from explorer.gui.widgets.training_curves import TrainingCurves
from explorer.gui.widgets.training_run import TrainingRunControls

DEMO_DATA = "fashion-mnist-mini"
# The demo is what a first Start does: the form's defaults (Fast-AT on the
# small CNN, half a minute to a minute on 2 CPU cores) on the built-in set,
# with the remembered validation share. Entries here change it (the tests shrink it).
DEMO_GENERAL: dict = {}
SLOT = "training/run"
AUGMENT_KEY = "training/augment"  # the last augmentation chosen, kept between launches
VAL_KEY = "training/val_fraction"  # the last validation share, likewise
LAUNCH_KEY = "training/launch"  # in the app or separate process(es), N, devices
REDRAW_MS = 100


def split_text(val_n: int, n_train: int, selection: str = "robust_acc",
               no_alarm: str = "") -> str:
    """What chooses the best epoch; ``no_alarm``: why a run of clean
    training watches for no overfitting alarm (AlarmScope.headline)."""
    if not val_n:
        return (f"No validation split: training on all {n_train} images; the best "
                "checkpoint is the last epoch (nothing is chosen).")
    star = ("★" if selection == "robust_acc" else
            f"★, on validation {figure_name(selection)} accuracy in Method figures")
    follow = "follows" if no_alarm else "and the alarms follow"
    return (f"{val_n} training images held out for validation, {n_train} trained "
            f"on. The best checkpoint ({star}) {follow} the validation curves; the "
            f"dashed test curves are shown, never used to choose. {no_alarm}"
            ).rstrip()


class TrainingPanel(QWidget):
    title = "Training"
    demo_finished = Signal()
    epoch_shown = Signal(int)  # an epoch's metrics are on the curves

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.run_id: str | None = None
        self.run_dir: Path | None = None
        self.history = alarms.EpochHistory()
        self.alarm_scope = AlarmScope((), "")  # which alarms the run can raise
        self._shown_epoch = 0
        self._demo = False
        self._classes: tuple[str, ...] = ()  # names of the training set's labels
        self._build()
        ctx.session.data_changed.connect(self.on_data_changed)
        ctx.session.model_changed.connect(self.on_model_changed)
        ctx.runner.jobs_changed.connect(self.refresh_runs)
        self.on_data_changed()
        self.on_model_changed()
        self.refresh_runs()

    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(ERROR_STYLE)
        self.form = TrainingForm()
        self.form.general.set_values(
            {"augment": str(self.ctx.settings.value(AUGMENT_KEY, "auto"))})
        self.form.general.editor("augment").currentIndexChanged.connect(
            self._remember_augment)
        self.form.general.set_values(
            {"val_fraction": self.ctx.settings.value(VAL_KEY, VAL_FRACTION)})
        self.form.general.editor("val_fraction").valueChanged.connect(
            self._remember_val_fraction)
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        self.processes = ProcessesBox(self.ctx.settings, LAUNCH_KEY)
        self.run_controls = TrainingRunControls("Start training", where="under Runs")
        self.run_controls.start_requested.connect(self._on_start_clicked)
        self.run_controls.resume_requested.connect(self.resume_selected)
        self.run_controls.finished.connect(self.refresh_runs)
        controls = self.run_controls
        self.start_button = controls.start_button
        self.stop_button = controls.stop_button
        self.resume_button, self.status = controls.resume_button, controls.status
        left = QWidget()
        left.setFixedWidth(350)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.banner)
        ll.addWidget(scroll, 1)
        ll.addWidget(self.processes)
        ll.addWidget(self.run_controls)
        self.copy_recipe = CopyRecipeButton(self.recipe_settings, self.status)
        ll.addWidget(self.copy_recipe)

        self.alarm = AlarmBanner(self.ctx)
        self.split_note = QLabel()  # what chooses the best epoch, from the plan
        self.split_note.setWordWrap(True)
        self.split_note.setStyleSheet("color: #555;")
        self.curves = TrainingCurves()
        self.record = RecordControl(self.curves, self.ctx.runner)
        self.strip = AdversarialStrip()
        live = QWidget()
        lv = QVBoxLayout(live)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.alarm)
        lv.addWidget(self.split_note)
        lv.addWidget(self.record)
        lv.addWidget(self.curves, 1)
        lv.addWidget(self.strip)
        self.runs = RunList()
        self.runs.selection_changed.connect(self._update_buttons)
        self.tabs = QTabWidget()
        self.tabs.addTab(live, "Live")
        self.tabs.addTab(self.runs, "Runs")
        root = QHBoxLayout()
        self.model_strip = above(self, self.ctx, root)
        root.setContentsMargins(6, 6, 6, 6)
        root.addWidget(left)
        root.addWidget(self.tabs, 1)
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        # 10 Hz: every redraw repaints the plots (10-20 ms of the UI thread
        # on a slow, busy CPU); a loss curve needs no more.
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self._draw)

    @Slot()
    def _remember_augment(self) -> None:
        combo = self.form.general.editor("augment")
        self.ctx.settings.setValue(AUGMENT_KEY, combo.currentData())

    @Slot(float)
    def _remember_val_fraction(self, value: float) -> None:
        self.ctx.settings.setValue(VAL_KEY, value)

    # -- state -----------------------------------------------------------------
    def problem(self) -> str | None:
        s = self.ctx.session
        if s.dataset is None:
            return "Choose a data set on the Data & Model page."
        if len(tuple(getattr(s.dataset.info, "shape", ()))) != 3:
            return (f"'{s.data_name}' is a 2-D toy set, but {self.form.arch()} "
                    "and the other architectures train on images. Choose an "
                    "image data set on the Data & Model page.")
        if self.ctx.workspace is None:
            return "No workspace could be opened, so runs cannot be recorded."
        return None

    @Slot()
    def on_data_changed(self) -> None:
        problem = self.problem()
        self.banner.setText(problem or "")
        self.banner.setVisible(problem is not None)
        self._update_buttons()

    @Slot()
    def on_model_changed(self) -> None:
        """The form's "start from" choice follows the session's model."""
        self.form.set_start_model(self.ctx.session.model)

    @property
    def handle(self):
        return self.run_controls.handle

    @property
    def running(self) -> bool:
        return self.run_controls.running

    def stop(self) -> None:
        self.run_controls.stop()

    @Slot()
    def _update_buttons(self) -> None:
        selected = self.runs.selected()
        self.run_controls.set_buttons(
            can_resume=len(selected) == 1
            and self.runs.status(selected[0]) in RESUMABLE)

    @Slot()
    def refresh_runs(self) -> None:
        self.runs.refresh(self.ctx.workspace)
        self._update_buttons()

    # -- start, stop, resume -------------------------------------------------------
    @Slot()
    def _on_start_clicked(self) -> None:
        self.start_training()  # clicked(bool) must not reach limit_train

    def start_training(self, limit_train: int | None = None) -> None:
        try:
            config = self.current_config(limit_train)
        except (ParamError, ValueError) as exc:
            self.status.setText(str(exc))
            return
        if self.processes.separate:
            from explorer.core.launch_args import train_argv

            try:
                self._launch_separate(config, train_argv(config), resume=False)
            except ParamError as exc:
                self.status.setText(str(exc))
            return
        recorder = self.ctx.run_recorder("train", config.to_json(),
                                         title=run_title(config))
        self._launch(config, recorder, resume=False)

    def current_config(self, limit_train: int | None = None) -> TrainingConfig:
        """The run the page's settings describe; ParamError says what is wrong."""
        problem = self.problem()
        if problem is not None:
            raise ParamError(problem)
        config = self.form.config()
        s = self.ctx.session
        # fp16 on a CPU session: named before a run is recorded
        check_device(config.amp, s.device, name="mixed precision")
        root = str(self.ctx.settings.value(f"data/root/{s.data_name}", "") or "")
        config = config.replace(data=s.data_name, root=root or None,
                                limit_train=limit_train or config.limit_train)
        return config.resolved(tuple(s.dataset.info.shape))  # what "auto" means

    def recipe_settings(self) -> tuple[str, dict, str]:
        """(kind, config, device) of "Copy recipe"."""
        return "train", self.current_config().to_json(), str(self.ctx.session.device)

    def apply_recipe(self, recipe) -> str:
        """Fill the form from a train recipe; what differs from the session
        (its data set, a model it fine-tunes) is said in the returned text."""
        config = TrainingConfig.from_json(recipe.config)
        self.form.set_config(config)
        said = ["Training form filled from the recipe."]
        if config.data != self.ctx.session.data_name:
            said.append(f"It trains on {config.data}: choose it on the Data & "
                        "Model page.")
        if config.init_from is not None:
            said.append(f"It fine-tunes {config.init_from}: open that model and "
                        "choose to start from it.")
        text = " ".join(said)
        self.status.setText(text)
        return text

    @Slot()
    def resume_selected(self) -> None:
        selected = self.runs.selected()
        ws = self.ctx.workspace
        if ws is None or len(selected) != 1 or self.running:
            return
        run_id = selected[0]
        if not self.run_controls.can_resume(self.ctx.workspace.run_dir(run_id),
                                            run_id):
            return
        config = TrainingConfig.from_json(ws.get(run_id).config)
        # Read the earlier epochs before the job starts recording new ones.
        earlier = ws.metrics(run_id)
        if self.processes.separate:
            from explorer.core.launch_args import resume_argv

            try:
                self._launch_separate(config, resume_argv(run_id), resume=True,
                                      run_id=run_id)
            except ParamError as exc:
                self.status.setText(str(exc))
                return
        else:
            self._launch(config, self.ctx.resume_recorder(run_id), resume=True)
        for name, points in earlier.items():
            for step, value in points:
                self._add(Metric(name, value, step), check=False)
        self._schedule()

    def _launch(self, config: TrainingConfig, recorder, *, resume: bool) -> None:
        self._prepare(config, recorder.run_id)
        s = self.ctx.session
        same_test = s.split == "test" and s.data_name == config.data
        handle = self.ctx.runner.start(
            train_run, name=f"training {config.defense}", slot=SLOT,
            job_args=(config,), recorder=recorder, run_dir=self.run_dir,
            test_set=s.dataset if same_test else None, device=s.device,
            resume=resume)
        self._follow(handle, self.run_id, resume)

    def _launch_separate(self, config: TrainingConfig, cli_args: list[str], *,
                         resume: bool, run_id: str | None = None) -> None:
        """``explorer train`` under torchrun; it records the run (no recorder
        here) and says its id in its first line (see _on_snapshot)."""
        argv, env = self.processes.command(cli_args, self.ctx.workspace.path)
        self._prepare(config, run_id)
        handle = self.ctx.runner.start(
            launch_job, name=f"training {config.defense} (separate)", slot=SLOT,
            job_args=(argv,), env=env)
        handle.failed.connect(self._on_failed_separate)
        handle.cancelled.connect(self._on_cancelled_separate)
        self._follow(handle, run_id or "in a separate process", resume)

    def _prepare(self, config: TrainingConfig, run_id: str | None) -> None:
        s = self.ctx.session
        self.run_id = run_id
        self.run_dir = (self.ctx.workspace.run_dir(run_id) if run_id is not None
                        else None)
        self.banner.setVisible(self.problem() is not None)
        validation = config.selected_on == "validation"
        self.history = alarms.EpochHistory(validation)
        self.alarm_scope = scope(config.defense, config.params)
        self._shown_epoch = 0
        self.alarm.clear()
        self.split_note.clear()
        self.split_note.setToolTip(rich_tip(self.alarm_scope.reason))
        self.curves.reset(config.epochs, validation, selection_key(config.defense))
        self.strip.clear()
        same_data = s.data_name == config.data and s.dataset is not None
        self._classes = tuple(s.dataset.info.classes) if same_data else ()

    def _follow(self, handle, run_id: str, resume: bool) -> None:
        # The controls first: their status line is set before the page reacts.
        self.run_controls.follow(handle, run_id, resume=resume)
        for name in ("metric", "snapshot", "done", "cancelled"):
            getattr(handle, name).connect(getattr(self, f"_on_{name}"))
        self.tabs.setCurrentIndex(0)
        self.refresh_runs()

    # -- events ------------------------------------------------------------------
    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        if (run_id := run_id_of(event)) is not None:  # a separate process's run
            self.run_id, self.run_controls.run_id = run_id, run_id
            self.run_dir = self.ctx.workspace.run_dir(run_id)
            self.refresh_runs()
        elif event.label == PLAN:
            self.curves.set_steps_per_epoch(int(event.arrays["steps_per_epoch"]))
            self.split_note.setText(split_text(
                int(event.arrays["val_n"]), int(event.arrays["n_train"]),
                self.curves.selection.removeprefix("val_"),
                self.alarm_scope.headline))
        elif event.label == STRIP:
            self.strip.show_snapshot(event, self._classes)

    @Slot(object)
    def _on_metric(self, event: Metric) -> None:
        self._add(event, check=True)
        self._schedule()

    def _add(self, event: Metric, *, check: bool) -> None:
        if event.name == "batch_loss":
            self.curves.add_batch(event.step, event.value)
            return
        self.curves.add_epoch(event.name, event.step, event.value)
        if self.history.add(event.name, event.step, event.value) and check:
            alarm = alarms.check(self.history.rows(), kinds=self.alarm_scope.kinds)
            shown = self.alarm.alarm
            if alarm is not None and self.run_dir is not None and (
                    shown is None or shown.kind != alarm.kind):
                best = best_file(self.run_dir) or self.run_dir / BEST_FILES[0]
                self.alarm.show_alarm(alarm, best, self.alarm_scope.reason)

    def _schedule(self) -> None:
        if not self._redraw.isActive():
            self._redraw.start()

    @Slot()
    def _draw(self) -> None:
        self.curves.redraw()
        if self.history.last_complete() > self._shown_epoch:
            self._shown_epoch = self.history.last_complete()
            self.epoch_shown.emit(self._shown_epoch)

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        self._draw()
        self.status.setText(f"run {self.run_id} finished: {results.get('epochs')} "
                            f"epochs; {best_text(results)}")
        if self._demo:
            self._demo = False
            self.demo_finished.emit()

    @Slot()
    def _on_cancelled(self) -> None:
        self._draw()

    @Slot(str)
    def _on_failed_separate(self, message: str) -> None:
        """A separate process failed: its own error line in the banner."""
        self.banner.setText(f"The training process failed: {message}")
        self.banner.setVisible(True)
        self._close_record("failed", message)

    @Slot()
    def _on_cancelled_separate(self) -> None:
        self._close_record("cancelled")

    def _close_record(self, status: str, error: str | None = None) -> None:
        close_dangling(self.ctx.workspace, self.run_id, status, error)

    # -- demo (screenshots, `python -m explorer.gui.panels.training`) -------------
    def run_demo(self) -> None:
        """The form's defaults (see ``DEMO_GENERAL``) on ``DEMO_DATA``."""
        self._demo = True
        arch, arch_params, defense, params, general = self.form.defaults()
        del general["val_fraction"]  # the remembered share, as a user's Start
        self.form.choose(arch, arch_params, defense, params,
                         {**general, **DEMO_GENERAL})
        s = self.ctx.session
        if s.dataset is not None and s.data_name == DEMO_DATA and s.split == "test":
            self.start_training()
            return
        job = self.ctx.load_data(DEMO_DATA, "test", slot="training/demo-data")
        job.done.connect(self._on_demo_data)

    @Slot(dict)
    def _on_demo_data(self, _result: dict) -> None:
        self.start_training()

