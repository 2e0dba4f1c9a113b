"""The job/event protocol shared by the GUI runner and the CLI.

A job is a generator function that yields small frozen events and checks a
:class:`CancelToken` between steps. Its last event is :class:`Done` with the
results. Events carry plain Python / CPU NumPy data, never live model tensors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np


class Cancelled(Exception):
    """Raised by :meth:`CancelToken.check` when the user asked to stop."""


class CancelToken:
    """Thread-safe flag set by the UI (or Ctrl+C) and checked by jobs."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    label: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    value: float
    step: int = 0


@dataclass(frozen=True, slots=True)
class Image:
    """A named image (CPU float32, HxW or HxWxC, values in [0, 1])."""

    name: str
    array: np.ndarray
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Named CPU arrays describing one step of a job (e.g. an attack iterate:
    ``x_adv``, ``loss``, ``probs``). Unlike images, every snapshot reaches the
    UI, so a view can scrub through them; jobs send them every k steps."""

    step: int
    total: int
    arrays: dict[str, np.ndarray]
    label: str = ""


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class Log:
    message: str
    level: Literal["info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Done:
    results: dict[str, Any] = field(default_factory=dict)


Event = Progress | Metric | Image | Snapshot | Artifact | Log | Done
Job = Callable[..., Iterator[Event]]


def run_to_end(events: Iterator[Event]) -> dict[str, Any]:
    """Drain a job and return the results of its final :class:`Done` event."""
    results: dict[str, Any] = {}
    for event in events:
        if isinstance(event, Done):
            results = event.results
    return results


class ProgressThrottle:
    """Emit progress only when it advanced by ``step`` (fraction) or finished.

    Keeps tiny-batch jobs from flooding the UI's event loop (Orange's rule).
    """

    def __init__(self, step: float = 0.01) -> None:
        self.step = step
        self._last = -1.0

    def due(self, done: int, total: int) -> bool:
        frac = done / total if total else 1.0
        if done >= total or frac - self._last >= self.step:
            self._last = frac
            return True
        return False
