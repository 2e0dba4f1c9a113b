"""The guided story: steps that drive the pages through their public API.

A :class:`Step` names its page and a ``start`` function. ``start`` receives a
:class:`StepRun` and drives the page (loading the data and model it needs,
starting the page's real jobs through the runner); when the page shows its
result it calls :meth:`StepRun.finish` with a caption made from the numbers
the page produced. A step left before it finishes is stopped: its late
signals are disconnected and the presenter cancels the jobs it started.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

DATA, SPLIT = "fashion-mnist-mini", "test"
STANDARD, ROBUST = "fmnist-cnn-standard", "fmnist-cnn-pgdat"
IMAGES = 8  # attacked together; the story shows one of them
PGD = {"eps": 0.1, "steps": 20, "norm": "linf", "alpha": 0.01, "targeted": "none"}
SURE = 0.9  # "high confidence" for the first image
PREFERRED = "Coat"


@dataclass(frozen=True)
class Step:
    """One slide of the story: ``start`` drives ``page`` (a panel key)."""

    title: str
    page: str
    start: Callable[[StepRun], None]
    waiting: str = "running…"  # the caption until the step has its numbers


@dataclass
class Story:
    steps: list[Step]
    # What steps share (the attacked images, which one is shown).
    memo: dict[str, Any] = field(default_factory=dict)


class StepRun(QObject):
    """A step while it is on screen: the window, its page, and the signal
    connections it made (dropped when the step is left)."""

    finished = Signal(str)  # the caption, once the page shows the result

    def __init__(self, window, step: Step, story: Story) -> None:
        super().__init__()
        self.window, self.step, self.story = window, step, story
        self.ctx = window.ctx
        self.page = window.panels[step.page]
        self.caption: str | None = None
        self.active = True
        self._connections: list[tuple[Any, Callable]] = []

    def connect(self, signal, slot: Callable) -> None:
        """Connect ``slot`` for as long as this step is on screen."""
        signal.connect(slot)
        self._connections.append((signal, slot))

    def finish(self, caption: str) -> None:
        if self.active:
            self.caption = caption
            self.finished.emit(caption)

    def stop(self) -> None:
        self.active = False
        for signal, slot in self._connections:
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass  # already gone with its sender
        self._connections.clear()

    def with_source(self, model: str, then: Callable[[], None],
                    ready: Callable[[], bool] = lambda: True) -> None:
        """Call ``then`` once the session holds the story's data and
        ``model`` (loading them in the background when needed)."""
        s = self.ctx.session

        def matches() -> bool:
            return (s.data_name == DATA and s.split == SPLIT
                    and s.model_source == model and ready())

        if matches():
            then()
            return
        done = False

        def check() -> None:
            nonlocal done
            if not done and self.active and matches():
                done = True
                then()

        self.connect(s.data_changed, check)
        self.connect(s.model_changed, check)
        if s.data_name != DATA or s.split != SPLIT:
            self.ctx.load_data(DATA, SPLIT, slot="presenter/data")
        if s.model_source != model:
            self.ctx.load_builtin_model(model, slot="presenter/model")


def percent(p: float) -> str:
    """Whole percents, as a presenter says them; one decimal near the ends so
    that 99.6 % is not said as 100 % (nor 0.4 % as 0 %)."""
    v = 100 * float(p)
    return f"{v:.1f} %" if 99.5 <= v < 100 or 0 < v < 0.5 else f"{v:.0f} %"


def _article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


# -- the attack steps (Attack Lab) --------------------------------------------
def _attacked(run: StepRun, model: str) -> dict | None:
    """The finished live result on ``model``, when the Attack Lab shows it."""
    box = run.page.live_box
    if (run.story.memo.get("attacked") == model and box.result is not None
            and not box.running and run.ctx.session.model_source == model):
        return box.result
    return None


def _choose_focus(result: dict, classes: tuple[str, ...]) -> int:
    """The first image the model gets right with high confidence (a coat
    when there is one), preferring one the attack fooled."""
    y, pred = np.asarray(result["y"]), np.asarray(result["pred_clean"])
    conf = np.asarray(result["probs_clean"]).max(1)
    fooled = np.asarray(result["success"]).astype(bool)
    sure = (pred == y) & (conf >= SURE)
    coat = np.array([0 <= k < len(classes) and classes[k] == PREFERRED
                     for k in y.tolist()])
    for mask in (sure & fooled & coat, sure & fooled, sure, pred == y):
        if mask.any():
            return int(np.flatnonzero(mask)[0])
    return 0


def _attack_step(model: str, describe: Callable[[StepRun, dict, int], str]):
    """Attack the first images with PGD on ``model`` (or reuse the result
    already shown), focus the story's image, caption it with ``describe``."""

    def show(run: StepRun, result: dict) -> None:
        memo = run.story.memo
        if model == STANDARD or "focus" not in memo:
            memo["focus"] = _choose_focus(result, run.page.picker.classes())
        run.page.live.set_focus(memo["focus"])
        run.finish(describe(run, result, memo["focus"]))

    def start(run: StepRun) -> None:
        result = _attacked(run, model)
        if result is not None:
            show(run, result)
            return
        page, s = run.page, run.ctx.session

        def attack() -> None:
            page.picker.tabs.setCurrentIndex(0)
            page.tabs.setCurrentIndex(0)
            page.picker.clear()
            page.picker.select_first(IMAGES)
            page.attack_form.choose("pgd", dict(PGD))

            def done() -> None:
                run.story.memo["attacked"] = model
                show(run, page.live_box.result)

            run.connect(page.live_finished, done)
            page.run_live()

        run.with_source(model, attack, ready=lambda: page.problem() is None
                        and page.picker.dataset is s.dataset)

    return start


def _name(run: StepRun, k: int) -> str:
    return run.page.picker.class_name(int(k))


def _clean_caption(run: StepRun, r: dict, i: int) -> str:
    k = int(r["pred_clean"][i])
    return (f"The standard model sees {_article(_name(run, k))}, "
            f"{percent(r['probs_clean'][i][k])} sure.")


def _delta_caption(run: StepRun, r: dict, i: int) -> str:
    delta = float(np.abs(r["x_adv"][i] - r["x"][i]).max())
    return (f"PGD changes each pixel by at most {255 * delta:.0f}/255 — "
            f"invisible, so here it is amplified ×{1 / PGD['eps']:.0f}.")


def _adv_caption(run: StepRun, r: dict, i: int) -> str:
    k = int(r["pred_adv"][i])
    clean = _name(run, int(r["pred_clean"][i]))
    if k == int(r["pred_clean"][i]):
        return (f"This time the attack did not flip it: still {_article(clean)}, "
                f"{percent(r['probs_adv'][i][k])}.")
    return (f"The same picture plus that noise: now {_article(_name(run, k))}, "
            f"{percent(r['probs_adv'][i][k])} sure.")


def _robust_caption(run: StepRun, r: dict, i: int) -> str:
    k, y = int(r["pred_adv"][i]), int(r["y"][i])
    held = int((np.asarray(r["pred_adv"]) == np.asarray(r["y"])).sum())
    n = len(r["y"])
    if k == y:
        what = f"still {_article(_name(run, k))}, {percent(r['probs_adv'][i][k])}"
    else:
        what = f"fooled here too: {_article(_name(run, k))}, " \
               f"{percent(r['probs_adv'][i][k])}"
    return (f"The same attack on the adversarially trained model: {what} "
            f"({held} of {n} images keep their class).")


# -- the other pages' demos -------------------------------------------------------
_ACCURACY = re.compile(r"accuracy ([0-9.]+)%")


def _playground(run: StepRun) -> None:
    page = run.page

    def done() -> None:
        parts = []
        for view in page.views:
            m = _ACCURACY.search(view.stats.text())
            name = view.title.text().split(" · ")[0]
            if m:
                parts.append(f"{name} {m.group(1)} %")
        run.finish(f"After {page.shown_step} training steps, adversarial training "
                   f"(right) keeps the boundary away from the points — accuracy "
                   f"{', '.join(parts)}.")

    run.connect(page.demo_finished, done)
    page.run_demo()


def _certify(run: StepRun) -> None:
    page = run.page

    def done() -> None:
        r = page.smoothing.results
        accs = sorted((float(k), float(v)) for k, v in r["certified_acc"].items())
        positive = [(k, v) for k, v in accs if k > 0 and v > 0]
        radius, acc = (positive[-1] if positive else accs[-1])
        run.finish(f"Randomized smoothing proves it: {percent(acc)} of {r['n']} "
                   f"images keep their class for any change of ℓ2 size up to "
                   f"{radius:g}.")

    run.connect(page.demo_finished, done)
    page.run_demo()


def _draw(run: StepRun) -> None:
    page = run.page

    def ready() -> None:
        page.tabs.setCurrentIndex(0)
        page.picker.clear()
        page.picker.canvas.clear()
        page.picker.tabs.setCurrentIndex(1)
        page.attack_form.choose("pgd", dict(PGD))
        run.story.memo.pop("attacked", None)
        run.connect(page.live_finished, mine)
        run.finish("Your turn: draw a digit or a shoe, Add to selection, "
                   "Run attack — then watch it break.")

    def mine() -> None:
        r = page.live_box.result
        if r is None or not run.active:
            return
        i = len(r["y"]) - 1  # the last drawing added
        a, b = int(r["pred_clean"][i]), int(r["pred_adv"][i])
        run.finish(
            f"Your drawing: {_article(_name(run, a))}, "
            f"{percent(r['probs_clean'][i][a])} → {_article(_name(run, b))}, "
            f"{percent(r['probs_adv'][i][b])}.")

    s = run.ctx.session
    run.with_source(STANDARD, ready, ready=lambda: page.problem() is None
                    and page.picker.dataset is s.dataset)


def default_story() -> Story:
    """The seven steps, from a confident prediction to your own drawing."""
    return Story([
        Step("A confident prediction", "attack", _attack_step(STANDARD, _clean_caption),
             "Loading the standard model and attacking the first images…"),
        Step("The perturbation", "attack", _attack_step(STANDARD, _delta_caption),
             "Attacking…"),
        Step("Fooled", "attack", _attack_step(STANDARD, _adv_caption), "Attacking…"),
        Step("A robust model", "attack", _attack_step(ROBUST, _robust_caption),
             "Loading the adversarially trained model and attacking it…"),
        Step("The decision boundary", "playground", _playground,
             "Training a standard and an adversarially trained model live…"),
        Step("Certified radius", "certify", _certify,
             "Certifying a dozen images with randomized smoothing…"),
        Step("Draw your own", "attack", _draw, "Loading the standard model…"),
    ])
