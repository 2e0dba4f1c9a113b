"""The live attack: curves per step, a scrubber, and the focused image's triplet.

Every snapshot of the job is kept (so the scrubber can go back); painting
goes through one single-shot timer, so however fast snapshots arrive the
view repaints at most ~30 times a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from explorer.core.jobs import Snapshot
from explorer.gui.panels.attack_lab.live_curves import LiveCurves
from explorer.gui.widgets.image_grid import ImageGrid, chw_to_hwc
from explorer.gui.widgets.image_picker import MAX_SELECTED, Chosen
from explorer.gui.widgets.triplet_view import TripletView

STEP_DELAY_MS = 30
PAINT_MS = 100  # live repaints at 10 Hz: the curves, scrubber and triplet are costly
FOCUS = "#9ec5fe"
FOOLED = "#f4a6a6"


class LiveAttackView(QWidget):
    repainted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.snapshots: list[Snapshot] = []
        self.items: list[Chosen] = []
        self.classes: tuple[str, ...] = ()
        self.results: dict | None = None
        self.target: np.ndarray | None = None
        self.bound: float | None = None
        self.focus = 0
        self._follow = True
        self._curves_stale = False
        self._strip_items: list[tuple[str, int, np.ndarray]] = []
        self._marks: dict[int, str] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAINT_MS)
        self._timer.timeout.connect(self.repaint_now)
        # While an attack runs, the images and scores are drawn a pass of the
        # event loop after the curves, so no single pass repaints everything.
        self._step_timer = QTimer(self)
        self._step_timer.setSingleShot(True)
        self._step_timer.setInterval(STEP_DELAY_MS)
        self._step_timer.timeout.connect(self._show_step)

        self.strip = ImageGrid(columns=MAX_SELECTED, tile=28)
        self.strip.clicked.connect(self.set_focus)
        strip_area = QScrollArea()
        strip_area.setWidget(self.strip)
        strip_area.setWidgetResizable(True)
        strip_area.setFixedHeight(74)
        strip_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        strip_area.setToolTip("Click an image to look at it below")
        self.curves = LiveCurves()
        self.curves.setMinimumHeight(170)
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        self.scrubber.setToolTip("Step back and forth through the iterations")
        self.scrubber.valueChanged.connect(self._on_scrub)
        self.step_label = QLabel("no attack yet")
        self.step_label.setFixedWidth(240)  # changing text must not re-lay out
        scrub_row = QHBoxLayout()
        scrub_row.addWidget(QLabel("iteration"))
        scrub_row.addWidget(self.scrubber, 1)
        scrub_row.addWidget(self.step_label)
        self.triplet = TripletView()
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(strip_area)
        box.addWidget(self.curves, 5)
        box.addLayout(scrub_row)
        box.addWidget(self.triplet, 6)

    # -- feeding ----------------------------------------------------------------
    def start(
        self,
        items: Sequence[Chosen],
        classes: Sequence[str],
        bound: float | None,
        target: int | None,
    ) -> None:
        """A new run on ``items``; ``bound`` fixes the perturbation's colour
        levels (l-inf budget), ``target`` is the class when it is known now."""
        self._timer.stop()
        self.items, self.classes = list(items), tuple(classes)
        self.snapshots, self.results = [], None
        self.bound = bound
        self.target = None if target is None else np.full(len(items), target)
        self.focus = 0
        self._follow = True
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, 0)
        self.scrubber.blockSignals(False)
        self.curves.reset()
        self.triplet.clear()
        shown = [(it.source, it.y, it.x) for it in self.items]
        if not _same_images(shown, self._strip_items):
            # Re-running on the same images (the usual tweak-and-rerun) keeps
            # the strip's pixmaps: a new run then costs the UI thread less.
            self.strip.set_images([chw_to_hwc(it.x) for it in self.items],
                                  [self._name(it.y) for it in self.items])
            self._strip_items, self._marks = shown, None
        self.step_label.setText("starting…")
        self._mark()

    def add_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)
        self._curves_stale = True
        if not self._timer.isActive():
            self._timer.start()

    def finish(self, results: dict) -> None:
        """The job's result: targets become known; show the last step now."""
        self._timer.stop()
        self.results = results
        target = results.get("target")
        if target is not None:
            self.target = np.asarray(target)
        self._follow = True
        self._curves_stale = True
        self.repaint_now()

    # -- painting ---------------------------------------------------------------
    @Slot()
    def repaint_now(self) -> None:
        if not self.snapshots:
            return
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, len(self.snapshots) - 1)
        if self._follow:
            self.scrubber.setValue(len(self.snapshots) - 1)
        self.scrubber.blockSignals(False)
        if self._curves_stale:
            self._update_curves()
        if self.results is None:
            if not self._step_timer.isActive():
                self._step_timer.start()
        else:
            self._step_timer.stop()
            self._show_step()
        self.repainted.emit()

    def _iterates(self) -> list[Snapshot]:
        return [s for s in self.snapshots if s.label != "clean"]

    def _update_curves(self) -> None:
        self._curves_stale = False
        its = self._iterates()
        if not its:
            return
        steps = np.array([s.step for s in its], dtype=float)
        loss = np.stack([s.arrays["loss"] for s in its])
        probs = np.stack([s.arrays["probs"] for s in its])  # S, B, K
        rows = np.arange(probs.shape[1])
        y = np.array([it.y for it in self.items])[: probs.shape[1]]
        true_conf = probs[:, rows, y]
        target_conf = None
        if self.target is not None:
            target_conf = probs[:, rows, self.target[: probs.shape[1]]]
        self.curves.set_series(steps, loss, true_conf, target_conf, self.focus,
                               immediate=self.results is not None,
                               x_max=float(its[-1].total))

    def _show_step(self) -> None:
        index = self.scrubber.value()
        if not 0 <= index < len(self.snapshots):
            return
        snap = self.snapshots[index]
        i = min(self.focus, len(self.items) - 1)
        item = self.items[i]
        what = "clean images" if snap.label == "clean" else f"step {snap.step}"
        self.step_label.setText(f"{what} / {snap.total}   ({index + 1} of "
                                f"{len(self.snapshots)} received)")
        self.curves.set_cursor(snap.step)
        x_adv = snap.arrays["x_adv"][i]
        bound = self.bound
        if bound is None:  # no l-inf budget: scale to the largest change seen
            last = self.snapshots[-1].arrays["x_adv"]
            x_all = np.stack([it.x for it in self.items])
            bound = float(np.abs(last - x_all).max(initial=0.0))
        self.triplet.show_images(item.x, x_adv, bound)
        clean = self._clean_probs()
        target = None if self.target is None else int(self.target[i])
        fooled = bool(snap.arrays["success"][i]) and snap.label != "clean"
        self.triplet.show_scores(None if clean is None else clean[i],
                                 snap.arrays["probs"][i], self.classes, item.y,
                                 target, fooled)
        self._mark(snap)

    def _clean_probs(self) -> np.ndarray | None:
        if self.snapshots and self.snapshots[0].label == "clean":
            return self.snapshots[0].arrays["probs"]
        if self.results is not None:
            return self.results.get("probs_clean")
        return None

    def _mark(self, snap: Snapshot | None = None) -> None:
        marks: dict[int, str] = {}
        if snap is not None and snap.label != "clean":
            marks = {int(k): FOOLED for k in np.flatnonzero(snap.arrays["success"])}
        marks[self.focus] = FOCUS
        if marks != self._marks:  # restyling tiles re-lays out the strip
            self._marks = marks
            self.strip.set_marked(marks)

    # -- user -----------------------------------------------------------------
    @Slot(int)
    def _on_scrub(self, index: int) -> None:
        self._follow = index == self.scrubber.maximum()
        self._show_step()

    @Slot(int)
    def set_focus(self, index: int) -> None:
        if 0 <= index < len(self.items):
            self.focus = index
            self._curves_stale = True
            self.repaint_now()

    def shown_step(self) -> Snapshot | None:
        index = self.scrubber.value()
        return self.snapshots[index] if 0 <= index < len(self.snapshots) else None

    def _name(self, k: int) -> str:
        return self.classes[k] if 0 <= k < len(self.classes) else str(k)


def _same_images(a: list[tuple[str, int, np.ndarray]],
                 b: list[tuple[str, int, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        sa == sb and ya == yb and np.array_equal(xa, xb)
        for (sa, ya, xa), (sb, yb, xb) in zip(a, b, strict=True))
