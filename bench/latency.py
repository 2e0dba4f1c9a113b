"""Event-loop stall meter, reused by every issue's UI-latency benchmark.

A 5 ms repeating timer records how late each tick fires; lateness is time
the UI thread could not react (a stall). Report p50/p99/max in ms.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import (
    QCoreApplication,
    QElapsedTimer,
    QEvent,
    QEventLoop,
    QObject,
    QTimer,
    Slot,
)

TICK_MS = 5


class StallMeter(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.clock = QElapsedTimer()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.late_ms: list[float] = []
        self._last = 0

    def start(self) -> None:
        self.late_ms.clear()
        self.clock.start()
        self._last = self.clock.nsecsElapsed()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def resume(self) -> None:
        """Start ticking again, keeping what was measured (a paused meter)."""
        self._last = self.clock.nsecsElapsed()
        self.timer.start()

    @Slot()
    def _tick(self) -> None:
        now = self.clock.nsecsElapsed()
        self.late_ms.append(max(0.0, (now - self._last) / 1e6 - TICK_MS))
        self._last = now

    def summary(self) -> dict[str, float]:
        a = np.asarray(self.late_ms or [0.0])
        return {"ticks": len(a), "p50_ms": float(np.percentile(a, 50)),
                "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def pump(seconds: float) -> None:
    """Run the event loop for ``seconds`` (the benchmark's main thread).

    A real event loop, as the app's: timers fire on time, and objects whose
    deletion was deferred (``deleteLater``) are deleted. A loop of
    ``processEvents()`` calls does neither (deferred deletions then pile up
    for ever, which looked like a leak in the soak).
    """
    loop = QEventLoop()
    QTimer.singleShot(max(0, round(1000 * seconds)), loop.quit)
    loop.exec()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def verdict(stats: dict[str, float], p99_target: float = 20.0,
            max_target: float = 50.0) -> str:
    ok = stats["p99_ms"] <= p99_target and stats["max_ms"] <= max_target
    return (f"p50 {stats['p50_ms']:5.1f} ms  p99 {stats['p99_ms']:5.1f} ms "
            f"(target <= {p99_target:g})  max {stats['max_ms']:5.1f} ms "
            f"(target <= {max_target:g})  over {stats['ticks']} ticks: "
            f"{'meets' if ok else 'MISSES'}")
