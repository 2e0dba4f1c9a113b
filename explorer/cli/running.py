"""Run a core job in the terminal: a rich progress bar, or JSON lines."""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Iterator
from typing import Any

from explorer.core.jobs import (
    Artifact,
    Cancelled,
    CancelToken,
    Done,
    Event,
    Log,
    Metric,
    Progress,
)


def to_json(value: Any) -> Any:
    """JSON-friendly copy of results (NaN becomes null, tuples lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)


def event_json(event: Event) -> dict[str, Any] | None:
    if isinstance(event, Progress):
        return {"event": "progress", "done": event.done, "total": event.total,
                "label": event.label}
    if isinstance(event, Metric):
        return {"event": "metric", "name": event.name, "value": to_json(event.value),
                "step": event.step}
    if isinstance(event, Log):
        return {"event": "log", "level": event.level, "message": event.message}
    if isinstance(event, Artifact):
        return {"event": "artifact", "name": event.name, "path": str(event.path)}
    return None


class JobInterrupted(Exception):
    pass


def run_job(
    events: Iterator[Event],
    token: CancelToken,
    *,
    as_json: bool,
    recorder=None,
    title: str = "working",
) -> dict[str, Any]:
    """Drain ``events``; Ctrl+C cancels at the job's next step.

    ``recorder(event)`` receives every event (the workspace run log).
    Returns the results of the final Done event.
    """
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(_signum, _frame) -> None:
        token.cancel()

    signal.signal(signal.SIGINT, on_interrupt)
    results: dict[str, Any] = {}
    try:
        if as_json:
            for event in events:
                if recorder is not None:
                    recorder(event)
                line = event_json(event)
                if line is not None:
                    sys.stdout.write(json.dumps(line) + "\n")
                    sys.stdout.flush()
                if isinstance(event, Done):
                    results = event.results
        else:
            results = _with_progress_bar(events, recorder, title)
    except Cancelled:
        raise JobInterrupted("cancelled by the user") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if token.cancelled:
        raise JobInterrupted("cancelled by the user")
    return results


def _with_progress_bar(events: Iterator[Event], recorder, title: str) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    console = Console(stderr=True)
    results: dict[str, Any] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
        "{task.percentage:>5.1f}%"), TimeRemainingColumn())
    with RichProgress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(title, total=None)
        for event in events:
            if recorder is not None:
                recorder(event)
            if isinstance(event, Progress):
                bar.update(task, completed=event.done, total=event.total,
                           description=event.label or title)
            elif isinstance(event, Log):
                console.print(f"[{event.level}] {event.message}")
            elif isinstance(event, Done):
                results = event.results
    return results


class RecordedRun:
    """A workspace run around a CLI job: finished, failed or cancelled on exit.

    ``with RecordedRun(ws, kind, config) as run: ...; run.summary = {...}``
    """

    def __init__(self, ws, kind: str, config: dict[str, Any], title: str = ""):
        self.ws = ws
        self.id = ws.create_run(kind, config, title=title).id
        self.summary: dict[str, Any] | None = None

    def record(self, event: Event) -> None:
        self.ws.record(self.id, event)

    def __enter__(self) -> RecordedRun:
        return self

    def __exit__(self, exc_type, exc, _tb) -> bool:
        if exc_type is None:
            self.ws.finish(self.id, "finished", summary=self.summary)
            return False
        from explorer.store import WorkspaceError

        stopped = issubclass(exc_type, JobInterrupted | KeyboardInterrupt)
        try:
            if stopped:
                self.ws.finish(self.id, "cancelled")
            else:
                self.ws.finish(self.id, "failed", error=str(exc))
        except (WorkspaceError, OSError) as secondary:
            # A full or read-only disk: the original error is what the user
            # needs; the run is marked interrupted at the next open.
            sys.stderr.write(f"warning: could not record the run's end ({secondary})\n")
        return False
