"""The first optimizer's one-off imports, paid in a worker with and without the warm-up.

Creating a process's first ``torch.optim`` optimizer imports ``torch._dynamo``
(over a second of Python holding the GIL). This bench runs that first
creation in a worker thread, as a training job would, while a 5 ms timer
measures the UI thread's lateness, in two fresh processes: one that ran
:func:`explorer.core.training.warmup.warm_up` at idle beforehand (what the
app does after start-up) and one that did not.

Target: with the warm-up, the worker's first optimizer costs < 0.1 s and
the UI's max lateness meets the 50 ms target.

    python bench/warm_up.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time


def one(mode: str) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841 - keeps Qt alive
    import torch
    from latency import StallMeter, pump, verdict

    from explorer.core.jobs import CancelToken
    from explorer.core.training.warmup import warm_up

    if mode == "with":
        start = time.perf_counter()
        list(warm_up(token=CancelToken()))
        print(f"  warm-up at idle: {time.perf_counter() - start:.2f} s")
    torch.set_num_threads(1)
    meter = StallMeter()
    meter.start()
    pump(0.5)
    took: list[float] = []

    def job() -> None:
        model = torch.nn.Linear(10, 10)
        start = time.perf_counter()
        torch.optim.SGD(model.parameters(), lr=0.1)
        took.append(time.perf_counter() - start)

    worker = threading.Thread(target=job)
    worker.start()
    while worker.is_alive():
        pump(0.05)
    pump(0.5)
    meter.stop()
    print(f"  {mode:>7} warm-up: first optimizer in the worker {took[0]:.3f} s; "
          f"UI {verdict(meter.summary())}")


def main() -> None:
    if len(sys.argv) > 1:
        one(sys.argv[1])
        return
    print("First optimizer created in a worker thread (fresh process each):")
    here = os.path.dirname(os.path.abspath(__file__))
    for mode in ("without", "with"):
        script = os.path.join(here, "warm_up.py")
        subprocess.run([sys.executable, script, mode], check=True)


if __name__ == "__main__":
    main()
