"""Plain values the workspace hands out: run records, log and artifact entries."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

RUNNING = "running"
INTERRUPTED = "interrupted"
FINAL_STATUSES = ("finished", "failed", "cancelled")
ALL_STATUSES = (RUNNING, *FINAL_STATUSES, INTERRUPTED)


class WorkspaceError(Exception):
    """A workspace cannot be opened or used; the message names the path or run."""


@dataclass(frozen=True)
class RunRecord:
    """One run as stored in the registry (a snapshot; it does not update itself)."""

    id: str
    kind: str
    title: str
    status: str
    config: dict[str, Any]
    summary: dict[str, Any]
    error: str | None
    started: float
    ended: float | None
    progress: float
    pid: int | None
    host: str | None
    updated: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else max(0.0, self.ended - self.started)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``explorer runs list --json`` prints)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "status": self.status,
            "config": self.config,
            "summary": self.summary,
            "error": self.error,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "progress": self.progress,
            "pid": self.pid,
            "host": self.host,
        }


COLUMNS = (
    "id, kind, title, status, config, summary, error, started, ended, progress, "
    "pid, host, updated"
)


def record_from_row(row: tuple[Any, ...]) -> RunRecord:
    rid, kind, title, status, config, summary, error, started, ended = row[:9]
    progress, pid, host, updated = row[9:]
    return RunRecord(
        id=rid, kind=kind, title=title, status=status, config=loads_dict(config),
        summary=loads_dict(summary), error=error, started=started, ended=ended,
        progress=progress, pid=pid, host=host, updated=updated,
    )  # fmt: skip


class LogEntry(NamedTuple):
    time: float
    level: str
    message: str


class ArtifactEntry(NamedTuple):
    name: str
    path: Path  # absolute: resolved against the run folder when stored relative
    time: float


def _json_default(obj: Any) -> Any:
    # Configs carry Paths, NumPy scalars/arrays, tuples and sets; keep them readable.
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    for attr in ("tolist", "item"):
        method = getattr(obj, attr, None)
        if callable(method):
            return method()
    return str(obj)


def dumps(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True, indent=indent)


# The key under which a stored JSON field that no longer parses comes back.
DAMAGED = "damaged"


def loads_dict(text: str | bytes | None) -> dict[str, Any]:
    """A stored JSON object; one damaged on disk comes back as ``{"damaged": …}``
    (one bad run must not hide the others)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, TypeError) as exc:  # JSONDecodeError, or not text at all
        return {DAMAGED: f"not valid JSON ({str(exc)[:80]})"}
    return value if isinstance(value, dict) else {"value": value}


def metric_value(value: float | None) -> float:
    # SQLite stores NaN as NULL; a diverged loss must come back as NaN.
    return math.nan if value is None else float(value)
