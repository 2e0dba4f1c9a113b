"""UI responsiveness while background jobs run (Foundation issue).

Opens the real main window (Data & Model panel, built-in data and model),
then measures event-loop stalls while
  1. clean accuracy runs again and again on the 6,000-image train split, and
  2. a worst-case job yields an image and a metric after every
     forward+backward step of the model, and
  3. the Attack Lab runs a live PGD attack on 16 images again and again
     (a snapshot per step: the loss curves, scrubber and triplet repaint).
Targets: p99 <= 20 ms, max <= 50 ms. Printed, not asserted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SECONDS = 6.0


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


def main() -> None:
    home = tempfile.mkdtemp()
    os.environ.setdefault("EXPLORER_HOME", f"{home}/ws")
    os.environ.setdefault("EXPLORER_CONFIG_DIR", f"{home}/cfg")
    from latency import StallMeter, pump, verdict

    from explorer.gui.app import application
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

    meter.start()
    pump(2.0)
    idle = meter.summary()

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
    eval_stats = meter.summary()
    panel.evaluated.disconnect(again)

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
    step_stats = meter.summary()
    pump(0.5)

    window.show_panel("attack")
    lab = window.panels["attack"]
    lab.picker.select_first(16)
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
    attack_stats = meter.summary()
    window.ctx.runner.cancel_all()
    pump(0.5)

    print("UI latency (5 ms timer lateness on the UI thread):")
    print(f"  idle                          : {verdict(idle)}")
    print(f"  clean accuracy x{evaluations:<3} (6k imgs) : {verdict(eval_stats)}")
    print(f"  per-step job ({len(steps)} steps)      : {verdict(step_stats)}")
    print(f"  Attack Lab PGD-100 x{attacks_run:<3} live  : {verdict(attack_stats)}")
    window.close()


if __name__ == "__main__":
    main()
