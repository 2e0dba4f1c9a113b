"""Playground: two MLPs trained side by side on a 2-D toy set, live.

The state is one :class:`~explorer.core.defenses.playground.Playground`
owned by the panel. Jobs (:func:`playground_job`) train it in the worker
thread; only one job touches it at a time, so every action that needs it
idle (play, step, reset, new settings) cancels the running job and waits
for its ``finished`` before going on. Pause = cancel, keeping the object;
Play = a new job on the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QSignalBlocker, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from explorer.core.data.base import DataError
from explorer.core.defenses.playground import PARAMS, Playground, playground_job
from explorer.core.jobs import Snapshot
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.panels.playground.decision_view import DecisionView
from explorer.gui.panels.playground.learner_box import (
    LearnerBox,
    _commit_on_enter,
    describe,
)
from explorer.gui.panels.playground.play_controls import PlayControls
from explorer.gui.widgets.job_controls import ERROR_STYLE
from explorer.gui.widgets.param_form import ParamForm
from explorer.gui.widgets.recorder import RecordControl

SLOT = "playground/train"
FOREVER = 10**9  # "play" = a job with more steps than anyone waits for
# Seconds of updates before a snapshot, whatever the speed: with a snapshot
# costing ~50 ms on a slow CPU this keeps the redraws at >= 10 per second.
MAX_INTERVAL = 0.03
REDRAW_MS = 15  # coalesce snapshots that arrive faster than a frame
DEMO_STEPS = 600
DEMO_EPS = 0.05  # a quarter of the gap between the moons: room for a margin
_DATA_NAMES = ("data", "n", "noise", "probes", "eps")
DATA_PARAMS = tuple(
    replace(p, unit="", label="probe ε (box units)") if p.name == "eps" else p
    for p in PARAMS if p.name in _DATA_NAMES)


class PlaygroundPanel(QWidget):
    title = "Playground"
    demo_finished = Signal()
    snapshot_drawn = Signal(int)  # the step now on screen

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.pg: Playground | None = None
        self.handle = None
        self.playing = False  # Play was pressed (its job may still be queued)
        self.frames = 0  # snapshots drawn, for the redraw-rate figure
        self.shown_step = -1
        self._latest: Snapshot | None = None
        self._queue: list[Callable[[], None]] = []  # waits for the job to end
        self._demo_steps = 0  # steps of the next fresh playground's first job
        self._demo = False
        self._played = False  # the running job is a Play (its end is a pause)
        self._build()
        self.rebuild()

    # -- layout ------------------------------------------------------------------
    def _build(self) -> None:
        self.data_form = ParamForm(DATA_PARAMS)
        _commit_on_enter(self.data_form)
        self.data_form.editor("noise").setSpecialValueText("set's default")
        data_box = QGroupBox("Data")
        QVBoxLayout(data_box).addWidget(self.data_form)
        self.boxes = (LearnerBox("Model A", "standard"),
                      LearnerBox("Model B", "pgd-at"))
        forms = QWidget()
        fl = QVBoxLayout(forms)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(data_box)
        for box in self.boxes:
            fl.addWidget(box)
            box.changed.connect(self.rebuild)
        fl.addStretch(1)
        self.data_form.values_changed.connect(self._on_data_values)
        scroll = QScrollArea()
        scroll.setWidget(forms)
        scroll.setWidgetResizable(True)
        self.controls = PlayControls()
        for name in ("play", "pause", "step", "reset"):
            getattr(self.controls, name).connect(getattr(self, name))
        self.controls.speed_changed.connect(self._on_speed)
        self.status = QLabel()
        self.status.setWordWrap(True)
        left = QWidget()
        left.setFixedWidth(310)
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(scroll, 1)
        ll.addWidget(self.controls)
        ll.addWidget(self.status)
        self.views = (DecisionView(), DecisionView())
        shown = QWidget()  # both views: what a recording shows
        vl = QHBoxLayout(shown)
        vl.setContentsMargins(0, 0, 0, 0)
        for view in self.views:
            vl.addWidget(view, 1)
        self.record = RecordControl(shown, self.ctx.runner)
        ll.addWidget(self.record)
        root = QHBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        root.addWidget(left)
        root.addWidget(shown, 1)
        self._paint = QTimer(self)
        self._paint.setSingleShot(True)
        self._paint.setInterval(REDRAW_MS)
        self._paint.timeout.connect(self.draw)

    # -- state -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.running

    def _when_idle(self, action: Callable[[], None], cancel: bool = True) -> None:
        """Run ``action`` once no job holds the playground, after the actions
        already waiting (each may start a job the next one waits for)."""
        if action not in self._queue:
            self._queue.append(action)
        if self.running and cancel:
            self.handle.cancel()
        self._drain()

    def _drain(self) -> None:
        while self._queue and not self.running:
            self._queue.pop(0)()
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.controls.set_state(self.pg is not None, self.playing)

    def _message(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if error else "")
        self.status.setText(text)

    # -- actions -----------------------------------------------------------------
    @Slot()
    def rebuild(self) -> None:
        """New settings: a fresh playground at step 0 (playing on if it was)."""
        self._drop(self._start_play)
        self._when_idle(self._rebuild_now)

    def _drop(self, action: Callable[[], None]) -> None:
        self._queue = [a for a in self._queue if a != action]

    def _rebuild_now(self) -> None:
        self._latest = None  # a late frame of the old playground is not drawn
        try:
            learners = [box.learner() for box in self.boxes]
            self.pg = Playground(learners, **self.data_form.values())
        except (ParamError, DataError) as exc:
            self.pg, self.playing = None, False
            self._message(str(exc), error=True)
            return
        values = self.data_form.values()
        for view, learner in zip(self.views, learners, strict=True):
            view.set_axes(values["data"], self.pg.classes)
            view.set_title(describe(learner))
        if self.playing:
            self._start_play()
        else:
            self._message("ready: press Play")
            self._start(self._demo_steps)
            self._demo_steps = 0

    @Slot()
    def play(self) -> None:
        if self.pg is not None and not self.playing:
            self.playing = True
            self._when_idle(self._start_play)

    @Slot()
    def pause(self) -> None:
        self._drop(self._start_play)
        if self.playing and self.running:
            self.handle.cancel()
        self.playing = False
        self._update_buttons()

    @Slot()
    def step(self) -> None:
        if self.pg is not None and not self.playing:
            self._when_idle(self._step_now, cancel=False)

    @Slot()
    def reset(self) -> None:
        if self.pg is not None:
            self.pause()
            self._when_idle(self._reset_now)

    def _step_now(self) -> None:
        if self.pg is not None:
            self._start(self.controls.speed())

    def _reset_now(self) -> None:
        if self.pg is not None:
            self.pg.reset()
            self._message("reset to fresh weights (same data)")
            self._start(0)

    def _start_play(self) -> None:
        if self.pg is None or not self.playing:
            return
        self._start(FOREVER)
        self._played = True
        self._message("training…")

    def _start(self, steps: int) -> None:
        """A job of ``steps`` updates (0 = just draw the current state)."""
        speed = self.controls.speed()
        self.handle = self.ctx.runner.start(
            playground_job, name="playground", slot=SLOT, job_args=(self.pg,),
            steps=steps, steps_per_snapshot=speed,
            max_interval=MAX_INTERVAL if steps == FOREVER else 3600.0)
        for name in ("snapshot", "done", "failed", "finished"):
            getattr(self.handle, name).connect(getattr(self, f"_on_{name}"))

    # -- controls ----------------------------------------------------------------
    @Slot(int)
    def _on_speed(self, _value: int) -> None:
        if self.playing:  # the pace is a job argument: restart on the same object
            self._when_idle(self._start_play)

    @Slot(dict)
    def _on_data_values(self, _values: dict) -> None:
        self.rebuild()

    # -- events ------------------------------------------------------------------
    @Slot(object)
    def _on_snapshot(self, event: Snapshot) -> None:
        self._latest = event
        if not self._paint.isActive():
            self._paint.start()

    @Slot()
    def draw(self) -> None:
        event, self._latest = self._latest, None
        if event is None or self.pg is None:
            return
        a = event.arrays
        for m, view in enumerate(self.views[: len(a["loss"])]):
            loss = float(a["loss"][m])
            loss_text = "–" if loss != loss else f"{loss:.3f}"
            view.show_snapshot(a, m, f"loss {loss_text} · accuracy "
                               f"{100 * float(a['acc'][m]):.1f}% · epoch "
                               f"{float(a['epoch']):.1f} · step {event.step}")
        self.frames += 1
        self.shown_step = event.step
        self.snapshot_drawn.emit(event.step)

    @Slot(dict)
    def _on_done(self, _results: dict) -> None:
        if self._demo:
            self._demo = False
            self.draw()
            self.demo_finished.emit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.playing = False
        self._message(f"training failed: {message}", error=True)

    @Slot()
    def _on_finished(self) -> None:
        self.handle = None
        if self._played and not self.playing and self.pg is not None:
            self._message(f"paused at step {self.pg.steps}")
        elif not self._queue and self.pg is not None and self.pg.steps:
            self._message(f"at step {self.pg.steps}: Play or Step to go on")
        self._played = False
        self._drain()

    def hideEvent(self, event) -> None:
        # A hidden playground leaves the CPU to the other panels.
        self.pause()
        super().hideEvent(event)

    # -- demo (screenshots, `python -m explorer.gui.panels.playground`) -------------
    def run_demo(self) -> None:
        """Standard vs PGD-AT on moons for ``DEMO_STEPS`` updates."""
        with QSignalBlocker(self.data_form):
            self.data_form.set_values({"data": "moons", "eps": DEMO_EPS, "probes": 6})
        for box, method in zip(self.boxes, ("standard", "pgd-at"), strict=True):
            with QSignalBlocker(box):
                box.choose(method, {"eps": DEMO_EPS})
        self._demo, self._demo_steps = True, DEMO_STEPS
        self.rebuild()
