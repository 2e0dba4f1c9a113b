"""Evaluate & Compare: several models, one attack suite, results side by side.

The panel arranges widgets and starts one job (``compare_dataset_job``) that
evaluates the checked models in turn; the table, curves, checks and examples
fill in from its events. "Export report…" writes HTML, CSV and JSON. A
click on a curve opens the gallery of the images that break at that eps.

"run: separate process(es)" runs ``explorer eval --suite ... --json`` under
torchrun instead (:mod:`explorer.core.launch`): the child records the run,
its metric and snapshot lines fill the same table, curves, checks and
examples. It evaluates built-in models, files and training runs, not the
session's model (that lives in this process), and its exported report has
no example images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.analysis import report
from explorer.core.analysis.compare import compare_dataset_job
from explorer.core.analysis.custom_suite import custom_plan
from explorer.core.analysis.suites import CUSTOM, SUITES
from explorer.core.attacks.eot import EOT
from explorer.core.jobs import Metric, Progress, Snapshot
from explorer.core.launch import launch_job, run_id_of
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.panels.evaluate.compare_table import CompareTable, metric_columns
from explorer.gui.panels.evaluate.compare_views import (
    MAX_MODELS,
    CheckVerdicts,
    EpsCurves,
    ExampleMatrix,
)
from explorer.gui.panels.evaluate.corruptions_tab import CorruptionsTab
from explorer.gui.panels.evaluate.model_checklist import SESSION, ModelChecklist
from explorer.gui.panels.evaluate.remedy import EvaluationPlan, RemedyBox
from explorer.gui.panels.evaluate.settings_box import EvalSettings
from explorer.gui.panels.evaluate.tradeoff_view import TradeoffView
from explorer.gui.panels.evaluate.transfer_tab import TransferTab
from explorer.gui.widgets.current_model import above
from explorer.gui.widgets.eps_gallery import EpsGallery, GallerySource
from explorer.gui.widgets.job_controls import FollowsJob, JobControls
from explorer.gui.widgets.processes_box import ProcessesBox, close_dangling
from explorer.gui.widgets.recipes import CopyRecipeButton

SLOT = "evaluate"
LAUNCH_KEY = "evaluate/launch"  # in the app or separate process(es), N, devices
SEPARATE_NOTE = ("ran in a separate process (run {run_id}); its exported report "
                 "has no example images — they are shown here")
DEMO_DATA = "fashion-mnist-mini"
DEMO_SETTINGS = {"suite": "quick", "eps": 0.1, "n": 100, "sweep": True,
                 "checks": True}
# Smaller attacks for the demo, so the screenshot is ready in seconds.
DEMO_OPTIONS = {"sweep_eps": [0.05, 0.1, 0.15, 0.2], "sweep_steps": 5,
                "check_n": 24, "check_options": {"steps": 5, "square_queries": 50,
                                  "spsa_images": 0}}


def recipe_values(config: dict[str, Any]) -> dict[str, Any]:
    """The settings box's values of an eval recipe's config; ParamError names
    a bad one."""
    suite = config.get("suite", "quick")
    if suite not in (*SUITES, CUSTOM):
        raise ParamError(f"unknown suite {suite!r} (choose from "
                         f"{', '.join((*SUITES, CUSTOM))})")
    values: dict[str, Any] = {"suite": suite,
                              "sweep": bool(config.get("sweep_eps", True)),
                              "checks": bool(config.get("checks", True))}
    for key, low, high, kind in (("eps", 0.0, 1.0, float), ("n", 1, 100_000, int),
                                 ("eot", int(EOT.minimum), int(EOT.maximum), int)):
        if key not in config:
            continue
        value = config[key]
        if (isinstance(value, bool) or not isinstance(value, kind | int)
                or not low <= value <= high):
            raise ParamError(f"{key} must be a {kind.__name__} in [{low}, {high}], "
                             f"got {value!r}")
        values[key] = value
    if suite == CUSTOM:
        attacks, budgets = config.get("attacks", []), config.get("budgets", [])
        if not attacks:
            raise ParamError("custom suite: the recipe names no attacks")
        custom_plan(list(attacks), [float(b) for b in budgets])  # bad ones raise
        values.update(attacks=list(attacks), budgets=list(budgets))
    return values


class EvaluatePanel(QWidget, FollowsJob):
    title = "Evaluate & Compare"
    demo_finished = Signal()
    evaluation_done = Signal(dict)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.results: dict[str, Any] | None = None
        self.run_dir: Path | None = None
        self.run_id: str | None = None  # a separate process's run
        self.options: dict[str, Any] = {}  # extra compare_job keywords
        self._names: list[str] = []
        self._demo: str | None = None  # None, "waiting" for data, "running"
        self._build()
        ctx.session.data_changed.connect(self.on_data_changed)
        ctx.session.model_changed.connect(self.on_model_changed)
        self.on_data_changed()
        self.on_model_changed()

    # -- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.models = ModelChecklist(self.ctx.workspace)
        self.models.message.connect(self._say)
        self.settings_box = EvalSettings()
        self.controls = JobControls("Run", bar_below=True)
        self.controls.run_requested.connect(self.run)
        self.controls.finished.connect(self._on_finished)
        self.run_button = self.controls.run_button
        self.cancel_button = self.controls.cancel_button
        self.progress, self.status = self.controls.progress, self.controls.status
        self.export_button = QPushButton("Export report…")
        self.export_button.setToolTip("HTML report, CSV and JSON of all numbers")
        self.export_button.clicked.connect(self._on_export_clicked)
        models_box = QGroupBox("Models")
        QVBoxLayout(models_box).addWidget(self.models)
        settings_group = QGroupBox("Evaluation")
        QVBoxLayout(settings_group).addWidget(self.settings_box)
        self.processes = ProcessesBox(self.ctx.settings, LAUNCH_KEY)
        settings_group.layout().addWidget(self.processes)
        left = QWidget()
        left.setFixedWidth(300)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(models_box, 1)
        ll.addWidget(settings_group)
        ll.addWidget(self.controls)
        ll.addWidget(self.export_button)
        self.copy_recipe = CopyRecipeButton(self.recipe_settings, self.status)
        ll.addWidget(self.copy_recipe)

        self.table = CompareTable()
        self.curves = EpsCurves()
        self.curves.point_clicked.connect(self.open_gallery)
        self.gallery = EpsGallery(self.ctx.runner, "evaluate/min-eps", self)
        self._sources: list[GallerySource] = []  # per curve: its model and images
        self.checks = CheckVerdicts()
        self.remedy = RemedyBox(self.ctx)  # EOT/BPDA re-runs beside the verdicts
        self.checks.layout().addWidget(self.remedy)
        self.examples = ExampleMatrix()
        scroll = QScrollArea()
        scroll.setWidget(self.examples)
        scroll.setWidgetResizable(True)
        middle, right = QSplitter(), QSplitter(Qt.Orientation.Vertical)
        # The checks get the wider half: model names and six verdict columns.
        for splitter, widgets, sizes in ((middle, (self.curves, self.checks),
                                          [370, 430]),
                                         (right, (self.table, middle, scroll),
                                          [130, 330, 270])):
            for widget in widgets:
                splitter.addWidget(widget)
            splitter.setSizes(sizes)
        root = QHBoxLayout()
        self.model_strip = above(self, self.ctx, root)
        root.setContentsMargins(6, 6, 6, 6)
        root.addWidget(left)
        self.tabs = QTabWidget()
        self.tabs.addTab(right, "Results")
        self.transfer = TransferTab(self.ctx, self.models, self.settings_box)
        self.tabs.addTab(self.transfer, "Transfer")
        self.tradeoff = TradeoffView(self.ctx, self.models)
        self.tabs.addTab(self.tradeoff, "Trade-off")
        self.evaluation_done.connect(self.tradeoff.show_results)
        self.corruptions = CorruptionsTab(self.ctx, self.models, self.settings_box,
                                          self.problem)
        self.tabs.addTab(self.corruptions, "Corruptions")
        root.addWidget(self.tabs, 1)
        self._update_buttons()

    # -- state ------------------------------------------------------------------
    def problem(self) -> str | None:
        s = self.ctx.session
        if s.dataset is None:
            return "Choose a data set on the Data & Model page."
        if len(tuple(getattr(s.dataset.info, "shape", ()))) != 3:
            return (f"'{s.data_name}' is a 2-D toy set; evaluation attacks images. "
                    "Choose an image data set on the Data & Model page.")
        if not self.models.checked():
            return "Check at least one model to evaluate."
        if len(self.models.checked()) > MAX_MODELS:
            return f"Compare at most {MAX_MODELS} models at once."
        return self.settings_box.problem()  # a bad custom suite, say

    @Slot()
    def on_data_changed(self) -> None:
        self._update_buttons()
        if self._demo == "waiting" and self.ctx.session.data_name == DEMO_DATA:
            self._demo = "running"
            self.run()

    @Slot()
    def on_model_changed(self) -> None:
        """The Data & Model page's model (wrapper included) as a row."""
        s = self.ctx.session
        self.models.set_session_model(s.model, s.model_source)

    def _update_buttons(self) -> None:
        self.export_button.setEnabled(self.results is not None)

    @Slot(str)
    def _say(self, text: str, error: bool = False) -> None:
        self.controls.say(text, error)

    def _run_config(self, chosen, values: dict) -> tuple[dict, dict]:
        """The job's options and the config the run records."""
        s, custom = self.ctx.session, values["custom"]
        options = {"checks": values["checks"], **custom, **self.options}
        if not values["sweep"]:
            options["sweep_eps"] = []
        if values["eot"] > 1:  # every gradient stage averages eot passes
            options["suite_options"] = {**options.get("suite_options", {}),
                                        "eot": values["eot"]}
        sweep = options.get("sweep_eps", values["curve_eps"])
        config = {"models": {c.name: c.source for c in chosen}, "data": s.data_name,
                  "split": s.split, "suite": values["suite"], "eps": values["eps"],
                  "n": values["n"], "device": str(s.device), "sweep_eps": sweep,
                  "checks": values["checks"], "eot": values["eot"], **custom}
        return options, config

    def recipe_settings(self) -> tuple[str, dict[str, Any], str]:
        """"Copy recipe": the evaluation the Run button would start."""
        if (problem := self.problem()) is not None:
            raise ParamError(problem)
        values = self.settings_box.job_settings()
        _, config = self._run_config(self.models.checked(), values)
        return "eval", config, str(self.ctx.session.device)

    def apply_recipe(self, recipe) -> str:
        """Fill the settings from an eval recipe and tick its models found in
        the list (the missing ones are named in the returned text); a bad
        value raises ParamError and changes nothing."""
        values = recipe_values(recipe.config)
        wanted = recipe.config.get("models", {})
        if not isinstance(wanted, dict):
            raise ParamError(f"models must be a table of name = source, got "
                             f"{wanted!r}")
        found, missing = [], []
        for name, source in wanted.items():
            choices = self.models.choices()  # by name, else by its source
            choice = next((c for c in choices if c.name == name), None) or next(
                (c for c in choices if c.source == str(source)), None)
            (found if choice is not None else missing).append(
                choice.name if choice is not None else name)
        self.settings_box.set_values(values)
        self.models.set_checked(found)
        said = [f"Evaluate form filled from the recipe: {values['suite']} suite, "
                f"{len(found)} model(s) ticked."]
        if missing:
            said.append(f"Not in the model list: {', '.join(missing)} (add them "
                        "with Add file… or Refresh runs).")
        s, data = self.ctx.session, recipe.config.get("data")
        if data is not None and data != s.data_name:
            said.append(f"It evaluates on {data}: choose it on the Data & Model "
                        "page.")
        text = " ".join(said)
        self._say(text)
        return text

    # -- run and cancel -------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        if (problem := self.problem()) is not None:
            self._say(problem, error=True)
            return
        s, values = self.ctx.session, self.settings_box.job_settings()
        chosen, custom = self.models.checked(), values["custom"]  # attacks, budgets
        separate = None
        if self.processes.separate:
            try:
                separate = self._separate_command(chosen, values)
            except ParamError as exc:
                self._say(str(exc), error=True)
                return
        self._names = [c.name for c in chosen]
        options, config = self._run_config(chosen, values)
        sweep = config["sweep_eps"]
        # one loader a model: the session's model is copied once, here
        loaders = {c.name: c.loader() for c in chosen}
        session = next((c for c in chosen if c.kind == SESSION), None)
        if (wrapper := getattr(getattr(session, "model", None), "wrapper", None)):
            config["wrapper"] = wrapper
        self.table.prepare(self._names, metric_columns(values["suite"], values["eps"],
                                                       **custom))
        self.curves.prepare(self._names, max(sweep, default=values["eps"]))
        self.checks.prepare(self._names)
        self.examples.prepare(self._names, tuple(getattr(s.dataset, "classes", ())))
        self.remedy.prepare(EvaluationPlan(
            loaders, s.dataset, values["n"],
            values["suite"], values["eps"], options, s.device, values["eot"], config))
        self.curves.setTitle(values["curve_title"])
        n = min(values["n"], len(s.dataset))
        self._sources = [GallerySource(
            loaders[c.name], s.dataset, n, "linf", c.name,
            key=(c.kind, id(loaders[c.name]) if c.kind == SESSION else c.source,
                 id(s.dataset), n, "linf"),
            device=s.device, classes=tuple(getattr(s.dataset, "classes", ())))
            for c in chosen]
        title = f"{values['suite']} suite: {', '.join(self._names)}"
        self.run_id = None
        if separate is not None:  # the child records the run itself
            self.results, self.run_dir = None, None
            argv, env = separate
            handle = self.ctx.runner.start(
                launch_job, name="evaluate & compare (separate)", slot=SLOT,
                job_args=(argv,), env=env)
            handle.cancelled.connect(self._on_separate_cancelled)
        else:
            recorder = self.ctx.run_recorder("eval", config, title=title)
            self.results, self.run_dir = None, (
                self.ctx.workspace.run_dir(recorder.run_id)
                if recorder is not None else None)
            handle = self.ctx.runner.start(
                compare_dataset_job, name="evaluate & compare", slot=SLOT,
                job_args=(loaders, s.dataset, values["n"]),
                recorder=recorder, suite=values["suite"], eps=values["eps"],
                config=config, device=s.device, **options)
        self.controls.follow(
            handle, f"evaluating {len(chosen)} model(s) on {values['n']} images…",
            **{name: getattr(self, f"_on_{name}")
               for name in ("metric", "snapshot", "progress", "done")})
        self._update_buttons()

    def _separate_command(self, chosen, values: dict[str, Any]
                          ) -> tuple[list[str], dict[str, str]]:
        """``explorer eval`` for the checked models under torchrun; ParamError
        when something cannot go to another process."""
        from explorer.core.launch_args import eval_argv

        if any(c.kind == SESSION for c in chosen):
            raise ParamError("the session model lives in this app: a separate "
                             "process evaluates built-in models, files and "
                             "training runs; uncheck it or run in the app")
        if self.ctx.workspace is None:
            raise ParamError("no workspace could be opened, so a separate "
                             "process cannot record its run; run in the app")
        s = self.ctx.session
        root = str(self.ctx.settings.value(f"data/root/{s.data_name}", "") or "")
        cli = eval_argv([c.source for c in chosen], data=s.data_name, split=s.split,
                        n=values["n"], suite=values["suite"], eps=values["eps"],
                        root=root or None, sweep=values["sweep"],
                        checks=values["checks"], eot=values["eot"],
                        custom=values["custom"])
        return self.processes.command(cli, self.ctx.workspace.path)

    @Slot()
    def _on_separate_cancelled(self) -> None:
        close_dangling(self.ctx.workspace, self.run_id, "cancelled")

    @Slot(int, float)
    def open_gallery(self, model: int, eps: float) -> None:
        """The images that break at ``eps`` under the ``model``-th curve's model."""
        if 0 <= model < len(self._sources):
            self.gallery.show_budget(self._sources[model], eps)

    # -- events -------------------------------------------------------------------
    @Slot(object)
    def _on_metric(self, event: Metric) -> None:
        self.table.set_value(event.step, event.name, event.value)
        if event.name == "robust_acc":
            self.remedy.set_robust(event.step, event.value)

    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        arrays = event.arrays
        if (run_id := run_id_of(event)) is not None:  # a separate process's run
            self.run_id, self.run_dir = run_id, self.ctx.workspace.run_dir(run_id)
        elif event.label == "sweep":
            self.curves.set_curve(event.step, arrays["eps"], arrays["robust_acc"])
        elif event.label == "checks":
            self.checks.set_checks(event.step, arrays)
            self.remedy.set_checks(event.step, arrays)
        elif event.label == "examples":
            if event.step == 0:
                self.examples.set_row(0, arrays["x"], arrays["y"], None)
            self.examples.set_row(event.step + 1, arrays["x_adv"], arrays["y"],
                                  arrays["pred_adv"])

    @Slot(object)
    def _on_progress(self, event: Progress) -> None:
        if event.label:
            self._say(event.label)

    @Slot(dict)
    def _on_done(self, results: dict) -> None:
        if self.run_id is not None and "models" not in results:
            # one model's result line is flat: its entry, as the job's list
            results = {**results, "models": [dict(results)]}
        self.results = results
        seconds = results.get("total_seconds", results.get("seconds"))
        seconds = seconds if isinstance(seconds, int | float) else 0.0
        note = "" if self.run_id is None else \
            "; " + SEPARATE_NOTE.format(run_id=self.run_id)
        self._say(f"done in {seconds:.1f} s — export a report to keep it{note}.")
        self.evaluation_done.emit(results)

    @Slot(str)
    def _on_finished(self, _state: str) -> None:
        self._update_buttons()
        if self._demo == "running":
            self._demo = None
            self.demo_finished.emit()

    # -- export -----------------------------------------------------------------------
    @Slot()
    def _on_export_clicked(self) -> None:
        start = str(self.run_dir) if self.run_dir is not None else ""
        folder = QFileDialog.getExistingDirectory(self, "Export the report to", start)
        if folder:
            self.export_to(Path(folder))

    def export_to(self, folder: Path) -> list[Path]:
        """Write report.html, results.csv and results.json into ``folder``."""
        if self.results is None:
            self._say("Run an evaluation first.", error=True)
            return []
        try:
            written = report.write_all(self.results, folder)
        except OSError as exc:
            self._say(f"could not export to {folder}: {exc}", error=True)
            return []
        self._say(f"report written to {written[0]}")
        return written

    # -- demo (screenshots, `python -m explorer.gui.panels.evaluate`) ----------------
    def run_demo(self) -> None:
        """The three built-in models, quick suite, 100 images, a short sweep."""
        from explorer.core import models

        self._demo = "waiting"
        self.models.set_checked(models.builtin_names())
        self.settings_box.set_values(DEMO_SETTINGS)
        self.options = dict(DEMO_OPTIONS)
        if self.ctx.session.data_name == DEMO_DATA:
            self.on_data_changed()
            return
        self.ctx.load_data(DEMO_DATA, "test", slot="evaluate/demo-data")

