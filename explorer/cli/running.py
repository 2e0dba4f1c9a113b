"""Run a core job in the terminal: a rich progress bar, or JSON lines.

Every ``--json`` line of every command is one object with a ``type``:
``progress`` (done, total, label), ``metric`` (name, value, step), ``log``
(level, message), ``artifact`` (name, path), ``epoch`` (a training epoch's
numbers) and, last, ``result`` (the command's results). A command that
records a workspace run says its id first (``run``: id), and one may pass
chosen snapshots on (``snapshot``: step, total, label, arrays, each array
``{dtype, shape, data}`` with base64 bytes): what the app needs to draw a
run it started as a subprocess (:mod:`explorer.core.launch` reads them).
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Collection, Iterator
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
    Snapshot,
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
        return {"type": "progress", "done": event.done, "total": event.total,
                "label": event.label}
    if isinstance(event, Metric):
        return {"type": "metric", "name": event.name, "value": to_json(event.value),
                "step": event.step}
    if isinstance(event, Log):
        return {"type": "log", "level": event.level, "message": event.message}
    if isinstance(event, Artifact):
        return {"type": "artifact", "name": event.name, "path": str(event.path)}
    return None


def snapshot_json(event: Snapshot) -> dict[str, Any]:
    """A snapshot line, its arrays encoded as :func:`explorer.core.launch.decode_array`
    reads them."""
    from explorer.core.launch import encode_array

    return {"type": "snapshot", "step": event.step, "total": event.total,
            "label": event.label,
            "arrays": {k: encode_array(v) for k, v in event.arrays.items()}}


def print_line(kind: str, values: dict[str, Any]) -> None:
    """One JSON line ``{"type": kind, ...}`` on stdout, flushed."""
    sys.stdout.write(json.dumps({"type": kind, **to_json(values)}) + "\n")
    sys.stdout.flush()


def print_result(results: dict[str, Any]) -> None:
    """The last line of a ``--json`` command."""
    print_line("result", results)


PLAIN_STOP = "cancelled by the user"


class JobInterrupted(Exception):
    pass


def run_job(
    events: Iterator[Event],
    token: CancelToken,
    *,
    as_json: bool,
    recorder=None,
    title: str = "working",
    on_event=None,
    run_id: str | None = None,
    snapshots: Collection[str] = (),
) -> dict[str, Any]:
    """Drain ``events``; Ctrl+C cancels at the job's next step.

    ``recorder(event)`` receives every event (the workspace run log), then
    ``on_event(event)`` (a command's own lines, e.g. one per epoch; plain
    ``print`` works under the progress bar). Returns the final Done's results.
    With ``as_json``, ``run_id`` is said first (a ``run`` line) and the
    snapshots labelled one of ``snapshots`` become ``snapshot`` lines.
    """
    if as_json and run_id is not None:
        print_line("run", {"id": run_id})
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(_signum, _frame) -> None:
        token.cancel()

    signal.signal(signal.SIGINT, on_interrupt)
    results: dict[str, Any] = {}
    try:
        with _Display(as_json, title, snapshots) as display:
            for event in events:
                if recorder is not None:
                    recorder(event)
                display.show(event)
                if on_event is not None:
                    on_event(event)
                if isinstance(event, Done):
                    results = event.results
    except Cancelled as exc:  # its text, when it has one, says why it stopped
        raise JobInterrupted(str(exc) or PLAIN_STOP) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if token.cancelled:
        raise JobInterrupted(PLAIN_STOP)
    return results


class _Display:
    """JSON lines on stdout, or a rich progress bar on stderr."""

    def __init__(self, as_json: bool, title: str,
                 snapshots: Collection[str] = ()) -> None:
        self.as_json, self.title, self.snapshots = as_json, title, snapshots
        self.bar = self.task = self.console = None

    def __enter__(self) -> _Display:
        if not self.as_json:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.console = Console(stderr=True)
            columns = (TextColumn("{task.description}"), BarColumn(), TextColumn(
                "{task.percentage:>5.1f}%"), TimeRemainingColumn())
            self.bar = RichProgress(*columns, console=self.console, transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task(self.title, total=None)
        return self

    def show(self, event: Event) -> None:
        if self.as_json:
            line = event_json(event)
            if isinstance(event, Snapshot) and event.label in self.snapshots:
                line = snapshot_json(event)
            if line is not None:
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
        elif isinstance(event, Progress):
            self.bar.update(self.task, completed=event.done, total=event.total,
                            description=event.label or self.title)
        elif isinstance(event, Log):
            self.console.print(f"[{event.level}] {event.message}")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


class RecordedRun:
    """A workspace run around a CLI job: finished, failed or cancelled on exit.

    ``with RecordedRun(ws, kind, config) as run: ...; run.summary = {...}``
    """

    def __init__(self, ws, kind: str, config: dict[str, Any], title: str = "",
                 device: str = ""):
        self.ws = ws
        self.id = ws.create_run(kind, config, title=title, device=device).id
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
                said = str(exc)  # kept when it says more than the usual words
                self.ws.finish(self.id, "cancelled", error=(
                    None if not said or said.startswith(PLAIN_STOP) else said))
            else:
                self.ws.finish(self.id, "failed", error=str(exc))
        except (WorkspaceError, OSError) as secondary:
            # A full or read-only disk: the original error is what the user
            # needs; the run is marked interrupted at the next open.
            sys.stderr.write(f"warning: could not record the run's end ({secondary})\n")
        return False


def print_table(
    key: str, rows: list[dict[str, Any]], as_json: bool, columns: list[str]
) -> None:
    """A table, or with --json the result line ``{"type": "result", key: rows}``."""
    if as_json:
        print_result({key: rows})
        return
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows])
              for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip())
