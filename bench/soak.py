"""Soak: the whole app, offscreen, through every page's demo again and again.

Opens the real main window on a temporary workspace and loops: the Data &
Model page's clean accuracy, a live Attack Lab run, a training run (every
other time stopped after its first epoch, the others to the end), the
Evaluate & Compare suite, the Playground, a Look Inside slice and the
Denoiser Lab. A 5 ms timer measures how late the UI thread answers the whole
time, and resident memory is sampled at the end of each loop (at the same
point of the cycle, after a GUI-thread collection).

After ``--warmup`` seconds (the first loops fill caches and import lazily)
it reports: resident memory growth between the first and the last loop end
as a fraction (target <= 0.05 over 30 minutes), its trend in MB per hour,
the UI's p99 timer lateness (target <= 20 ms), the demos run and any job
that failed. With ``--json`` the last line is one JSON object with
``rss_growth`` and ``ui_p99_ms``.

    python bench/soak.py --minutes 30 [--warmup 60] [--json]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")

from latency import StallMeter, pump  # found via the path above

PAGES = ("data", "attack", "training", "evaluate", "playground", "inside", "denoise")
DEMO_TIMEOUT_S = 300.0
RSS_TARGET, P99_TARGET = 0.05, 20.0


def rss_mb() -> float:
    """Resident memory now (Linux), else the peak (other systems)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


class Soak:
    def __init__(self, window, minutes: float, warmup_s: float, quiet: bool) -> None:
        self.window, self.quiet = window, quiet
        self.warm_at = time.monotonic() + warmup_s
        self.end = self.warm_at + 60 * minutes  # measured after the warm-up
        self.meter = StallMeter()
        self.late: list[float] = []
        self.samples: list[tuple[float, float]] = []  # (seconds, MB) at loop ends
        self.demos: dict[str, int] = {}
        self.failures: list[str] = []
        self.loops = 0
        self.trainings = 0
        window.ctx.runner.jobs_changed.connect(self._watch_jobs)
        self._seen: set[int] = set()

    def say(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _watch_jobs(self) -> None:
        for handle in self.window.ctx.runner.active(background=True):
            if id(handle) not in self._seen:
                self._seen.add(id(handle))
                handle.failed.connect(functools.partial(self._failed, handle.name))

    def _failed(self, name: str, message: str) -> None:
        self.failures.append(f"{name}: {message}")

    def _measure(self) -> bool:
        return time.monotonic() >= self.warm_at

    def demo(self, key: str) -> None:
        panel = self.window.panels[key]
        self.window.show_panel(key)
        done: list[bool] = []
        panel.demo_finished.connect(lambda: done.append(True))
        stop_training = False
        if key == "training":
            stop_training = self.trainings % 2 == 1
            self.trainings += 1
        if stop_training:
            panel.epoch_shown.connect(lambda _e: done.append(True))
        panel.run_demo()
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        while not done and time.monotonic() < deadline:
            pump(0.05)
        if not done:
            self.failures.append(f"{key}: the demo did not finish in "
                                 f"{DEMO_TIMEOUT_S:.0f} s")
        if stop_training:
            panel.stop()
            while panel.running:
                pump(0.05)
        try:
            panel.demo_finished.disconnect()
            if stop_training:
                panel.epoch_shown.disconnect()
        except (RuntimeError, TypeError):
            pass
        name = f"{key} (stopped)" if stop_training else key
        self.demos[name] = self.demos.get(name, 0) + 1

    def run(self) -> None:
        start = time.monotonic()
        self.meter.start()
        measuring = False
        while time.monotonic() < self.end:
            for key in PAGES:
                self.demo(key)
                if not measuring and self._measure():
                    measuring = True  # drop the warm-up's lateness
                    self.meter.late_ms.clear()
            self.loops += 1  # whole loops only: memory is sampled at one point
            pump(0.5)  # let deferred deletions and the collector's tick run
            # The sample's own full collection is the bench's, not the app's:
            # its stall stays out of the lateness figures.
            self.meter.timer.stop()
            gc.collect()
            if self._measure():
                self.samples.append((time.monotonic() - start, rss_mb()))
            self.meter.resume()
            self.say(f"loop {self.loops}: {rss_mb():.0f} MB, "
                     f"{(time.monotonic() - start) / 60:.1f} min")
        self.meter.stop()
        self.late = list(self.meter.late_ms)

    def result(self) -> dict:
        import numpy as np

        late = np.asarray(self.late or [0.0])
        out = {"loops": self.loops, "demos": self.demos, "failures": self.failures,
               "ui_p99_ms": float(np.percentile(late, 99)),
               "ui_p50_ms": float(np.percentile(late, 50)),
               "ui_max_ms": float(late.max()), "ticks": len(self.late),
               "rss_mb": rss_mb(), "rss_growth": None, "rss_mb_per_hour": None,
               "rss_samples": len(self.samples)}
        if len(self.samples) >= 2:
            t = np.array([s for s, _ in self.samples])
            mb = np.array([m for _, m in self.samples])
            out["rss_first_mb"], out["rss_last_mb"] = float(mb[0]), float(mb[-1])
            out["rss_growth"] = float((mb[-1] - mb[0]) / mb[0])
            out["rss_mb_per_hour"] = float(np.polyfit(t / 3600, mb, 1)[0])
        return out


def verdict(result: dict) -> str:
    growth = result["rss_growth"]
    grow_text = ("n/a (fewer than two loops after the warm-up)" if growth is None
                 else f"{100 * growth:+.1f}% ({result['rss_first_mb']:.0f} -> "
                      f"{result['rss_last_mb']:.0f} MB, trend "
                      f"{result['rss_mb_per_hour']:+.0f} MB/h; target <= "
                      f"{100 * RSS_TARGET:.0f}%: "
                      f"{'meets' if growth <= RSS_TARGET else 'MISSES'})")
    p99 = result["ui_p99_ms"]
    return (f"{result['loops']} loops, demos {result['demos']}\n"
            f"  resident memory growth: {grow_text}\n"
            f"  UI timer lateness: p50 {result['ui_p50_ms']:.1f} ms, p99 {p99:.1f} ms "
            f"(target <= {P99_TARGET:g}: {'meets' if p99 <= P99_TARGET else 'MISSES'})"
            f", max {result['ui_max_ms']:.0f} ms over {result['ticks']} ticks\n"
            f"  failed jobs: {len(result['failures'])}"
            + "".join(f"\n    {f}" for f in result["failures"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds before measuring (default 60)")
    parser.add_argument("--json", action="store_true",
                        help="progress on stderr; the last stdout line is JSON")
    parser.add_argument("--short-training", action="store_true",
                        help="the Training page's demo for one epoch on 500 "
                             "images instead of its default run (a quick check "
                             "that the loop works, not a soak)")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    home = tempfile.mkdtemp(prefix="explorer-soak-")
    os.environ["EXPLORER_HOME"] = f"{home}/ws"
    os.environ["EXPLORER_CONFIG_DIR"] = f"{home}/cfg"
    from explorer.gui.application import application
    from explorer.gui.main_window import MainWindow

    application()
    if args.short_training:
        from explorer.gui.panels.training import panel as training

        training.DEMO_GENERAL = {"epochs": 1, "train_images": 500, "eval_n": 50}
    window = MainWindow(ask_on_close=False)
    window.resize(1280, 800)
    window.show()
    window.finish_loading()
    soak = Soak(window, args.minutes, args.warmup, quiet=False)
    soak.run()
    result = soak.result()
    window.close()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Soak, {args.minutes:g} minutes after a {args.warmup:g} s warm-up:")
        print(verdict(result))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
