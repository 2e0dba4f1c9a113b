"""UI responsiveness while background jobs run (Foundation issue).

Opens the real main window (Data & Model panel, built-in data and model),
then measures event-loop stalls while
  1. clean accuracy runs again and again on the 6,000-image train split, and
  2. a worst-case job yields an image and a metric after every
     forward+backward step of the model, and
  3. the Attack Lab runs a live PGD attack on 16 images again and again
     (a snapshot per step: the loss curves, scrubber and triplet repaint),
  4. the Training panel trains small-cnn with Fast-AT on 2,000 images (batch
     losses, per-epoch curves, evaluation and the adversarial-example strip).
Targets: p99 <= 20 ms, max <= 50 ms. Printed, not asserted.
``python bench/ui_latency.py training`` runs only the named scenarios
(idle, eval, stepwise, attack, training); no argument runs them all.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from latency import StallMeter, pump, verdict  # found via the path above

SECONDS = 6.0
TRAINING_SECONDS = 12.0  # long enough for several epoch ends (eval + strip)
SCENARIOS = ("idle", "eval", "stepwise", "attack", "training")


def stepwise_job(model, x, y, steps, *, token):
    """Yields after every gradient step: the flood a live attack view produces."""
    import torch

    from explorer.core.jobs import Done, Image, Metric, Progress

    for i in range(steps):
        token.check()
        xi = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xi), y)
        (grad,) = torch.autograd.grad(loss, xi)
        yield Metric("loss", float(loss), i)
        yield Image("grad", grad[0, 0].abs().numpy().astype("float32"))
        yield Progress(i + 1, steps)
    yield Done({})


def measure_idle(window, meter) -> list[tuple[str, dict]]:
    meter.start()
    pump(2.0)
    meter.stop()
    return [("idle", meter.summary())]


def measure_eval(window, meter) -> list[tuple[str, dict]]:
    panel = window.panels["data"]
    panel.split_combo.setCurrentText("train")
    evaluations = 0

    def again(_result) -> None:
        nonlocal evaluations
        evaluations += 1
        panel.evaluate()

    panel.evaluated.connect(again)
    meter.start()
    pump(SECONDS)
    meter.stop()
    panel.evaluated.disconnect(again)
    pump(0.5)
    return [(f"clean accuracy x{evaluations} (6k imgs)", meter.summary())]


def measure_stepwise(window, meter) -> list[tuple[str, dict]]:
    session = window.ctx.session
    x, y = session.dataset.as_tensors(0, 64)
    handle = window.ctx.runner.start(stepwise_job, name="stepwise",
                                     job_args=(session.model, x, y, 100_000))
    steps = []
    handle.metric.connect(steps.append)
    meter.start()
    pump(SECONDS)
    meter.stop()
    handle.cancel()
    pump(0.5)
    return [(f"per-step job ({len(steps)} steps)", meter.summary())]


def measure_attack(window, meter) -> list[tuple[str, dict]]:
    """Two measurements: one long live attack, as a user watches it (steady
    state: snapshots, curves, scrubber and triplet repainting), and PGD-100
    started again as soon as the last one ends, which adds each run's start
    (a new job, the view reset) and finish (the final repaint) to the stream
    several times a second."""
    window.show_panel("attack")
    lab = window.panels["attack"]
    lab.picker.select_first(16)
    lab.attack_form.choose("pgd", {"eps": 0.1, "steps": 2000, "norm": "linf",
                                   "alpha": 0.001, "targeted": "none"})
    pump(0.5)
    lab.run_live()
    pump(0.5)  # past the start
    meter.start()
    pump(SECONDS)
    meter.stop()
    steady = meter.summary()
    window.ctx.runner.cancel_all()
    pump(0.5)

    lab.attack_form.choose("pgd", {"eps": 0.1, "steps": 100, "norm": "linf",
                                   "alpha": 0.005, "targeted": "none"})
    pump(0.5)
    attacks_run = 0

    def attack_again() -> None:
        nonlocal attacks_run
        attacks_run += 1
        lab.run_live()

    lab.live_box.stopped.connect(attack_again)
    meter.start()
    lab.run_live()
    pump(SECONDS)
    meter.stop()
    lab.live_box.stopped.disconnect(attack_again)
    window.ctx.runner.cancel_all()
    pump(0.5)
    return [("Attack Lab PGD-2000 live (steady)", steady),
            (f"Attack Lab PGD-100 x{attacks_run} back to back", meter.summary())]


def measure_training(window, meter) -> list[tuple[str, dict]]:
    """A real run in the Training panel, as a user starts it (Live tab shown).

    Two phases: the start (loading the training split, building the model;
    the first optimizer of a process also imports torch._dynamo, ~900
    modules, in the worker) until the first batch loss arrives, then steady
    training for ``TRAINING_SECONDS``.
    """
    window.show_panel("training")
    panel = window.panels["training"]
    panel.form.choose("small-cnn", {"width": 8, "dense": 64}, "fast-at", {},
                      {"epochs": 200, "batch_size": 50, "optimizer": "adam",
                       "schedule": "constant", "eval_n": 200, "eval_steps": 5})
    pump(0.5)
    epochs = []
    start: list[dict] = []

    def first_batch(_event) -> None:
        if not start:
            start.append(meter.summary())
            meter.start()

    panel.epoch_shown.connect(epochs.append)
    meter.start()
    panel.start_training(limit_train=2000)
    panel.handle.metric.connect(first_batch)
    while not start and panel.running:
        pump(0.05)
    pump(TRAINING_SECONDS)
    meter.stop()
    steady = meter.summary()
    panel.stop()
    while panel.running:
        pump(0.05)
    strip = f", strip at epoch {panel.strip.epoch}" if panel.strip.epoch else ""
    return [("Training start (load, build)", start[0] if start else steady),
            (f"Training Fast-AT ({len(epochs)} epochs{strip})", steady)]


def main() -> None:
    chosen = sys.argv[1:] or list(SCENARIOS)
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenario {unknown}; choose from {SCENARIOS}")
    home = tempfile.mkdtemp()
    os.environ.setdefault("EXPLORER_HOME", f"{home}/ws")
    os.environ.setdefault("EXPLORER_CONFIG_DIR", f"{home}/cfg")
    from explorer.gui.application import application
    from explorer.gui.main_window import MainWindow

    application()
    window = MainWindow(ask_on_close=False)
    window.show()
    window.finish_loading()
    panel = window.panels["data"]
    pump(0.1)
    while panel.accuracy.result is None:  # first evaluation of the test split
        pump(0.05)
    meter = StallMeter()
    print("UI latency (5 ms timer lateness on the UI thread):", flush=True)
    for name in chosen:
        for label, stats in globals()[f"measure_{name}"](window, meter):
            print(f"  {label:<38}: {verdict(stats)}", flush=True)
    window.close()


if __name__ == "__main__":
    main()
