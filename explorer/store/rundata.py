"""What a run records as it goes: metrics, artifacts, logs, progress, results.

A mix-in for :class:`explorer.store.workspace.Workspace`; it needs the
workspace's database, path and progress-throttle state.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import overload

from explorer.core.jobs import (
    Artifact,
    Done,
    Event,
    Image,
    Log,
    Metric,
    Progress,
    Snapshot,
)
from explorer.store.database import Database
from explorer.store.records import (
    ArtifactEntry,
    LogEntry,
    WorkspaceError,
    dumps,
    metric_value,
)

RUNS_DIR = "runs"
MetricRow = tuple[str, int, float]


class RunDataMixin:
    path: Path
    _db: Database
    _clock: Callable[[], float]
    _progress_lock: threading.Lock
    _progress_written: dict[str, float]
    PROGRESS_INTERVAL: float

    def _unknown(self, run_id: str) -> WorkspaceError:
        return WorkspaceError(f"no run with id {run_id!r} in workspace {self.path}")

    def _touch(self, conn: sqlite3.Connection, run_id: str, now: float) -> None:
        """Note activity on the run (for stale detection); fail on an unknown id."""
        cur = conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (now, run_id))
        if cur.rowcount == 0:
            raise self._unknown(run_id)

    def record(self, run_id: str, event: Event) -> None:
        """Store one job event. Images and snapshots are not kept (save what
        matters as artifacts)."""
        if isinstance(event, Metric):
            self.log_metrics(run_id, [(event.name, event.step, event.value)])
        elif isinstance(event, Progress):
            self._record_progress(run_id, event)
        elif isinstance(event, Artifact):
            self.add_artifact(run_id, event.name, event.path)
        elif isinstance(event, Log):
            self.log(run_id, event.message, event.level)
        elif isinstance(event, Done):
            now = time.time()
            with self._db.write() as conn:
                self._touch(conn, run_id, now)
                conn.execute(
                    "UPDATE runs SET summary = ? WHERE id = ?",
                    (dumps(event.results), run_id),
                )
        elif not isinstance(event, Image | Snapshot):
            raise TypeError(f"not a job event: {type(event).__name__}")

    def log_metrics(self, run_id: str, rows: Iterable[MetricRow]) -> None:
        """Append ``(name, step, value)`` points in one transaction."""
        now = time.time()
        values = [(run_id, str(n), int(s), float(v), now) for n, s, v in rows]
        with self._db.write() as conn:
            self._touch(conn, run_id, now)
            conn.executemany(
                "INSERT INTO metrics (run_id, name, step, value, time) "
                "VALUES (?,?,?,?,?)",
                values,
            )

    def add_artifact(
        self, run_id: str, name: str, path: str | os.PathLike[str]
    ) -> None:
        """Register a file; stored relative to the run folder when inside it."""
        folder = (self.path / RUNS_DIR / run_id).resolve()
        target = Path(path).resolve()
        stored = (
            target.relative_to(folder).as_posix()
            if target.is_relative_to(folder)
            else str(target)
        )
        now = time.time()
        with self._db.write() as conn:
            self._touch(conn, run_id, now)
            conn.execute(
                "INSERT INTO artifacts (run_id, name, path, time) VALUES (?,?,?,?)",
                (run_id, name, stored, now),
            )

    def log(self, run_id: str, message: str, level: str = "info") -> None:
        now = time.time()
        with self._db.write() as conn:
            self._touch(conn, run_id, now)
            conn.execute(
                "INSERT INTO logs (run_id, level, message, time) VALUES (?,?,?,?)",
                (run_id, level, message, now),
            )

    def _record_progress(self, run_id: str, event: Progress) -> None:
        final = event.total > 0 and event.done >= event.total
        tick = self._clock()
        with self._progress_lock:
            last = self._progress_written.get(run_id)
            if not final and last is not None and tick - last < self.PROGRESS_INTERVAL:
                return
            self._progress_written[run_id] = tick
        fraction = min(1.0, max(0.0, event.fraction))
        now = time.time()
        with self._db.write() as conn:
            self._touch(conn, run_id, now)
            conn.execute(
                "UPDATE runs SET progress = ? WHERE id = ?", (fraction, run_id)
            )

    # --- reading back -----------------------------------------------------------

    def _require(self, run_id: str) -> None:
        if not self._db.query("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            raise self._unknown(run_id)

    @overload
    def metrics(self, run_id: str) -> dict[str, list[tuple[int, float]]]: ...
    @overload
    def metrics(self, run_id: str, name: str) -> list[tuple[int, float]]: ...

    def metrics(
        self, run_id: str, name: str | None = None
    ) -> dict[str, list[tuple[int, float]]] | list[tuple[int, float]]:
        """Series by name, each ``[(step, value), ...]`` ordered by step.

        With ``name``, just that series (empty if never recorded).
        """
        self._require(run_id)
        sql = "SELECT name, step, value FROM metrics WHERE run_id = ?"
        params: list[str] = [run_id]
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        series: dict[str, list[tuple[int, float]]] = {}
        for metric, step, value in self._db.query(
            sql + " ORDER BY step, rowid", params
        ):
            series.setdefault(metric, []).append((int(step), metric_value(value)))
        if name is not None:
            return series.get(name, [])
        return series

    def artifacts(self, run_id: str) -> list[ArtifactEntry]:
        """Registered files, oldest first, with absolute paths."""
        self._require(run_id)
        folder = self.path / RUNS_DIR / run_id
        rows = self._db.query(
            "SELECT name, path, time FROM artifacts WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        return [
            ArtifactEntry(name, Path(p) if Path(p).is_absolute() else folder / p, t)
            for name, p, t in rows
        ]

    def logs(self, run_id: str) -> list[LogEntry]:
        self._require(run_id)
        rows = self._db.query(
            "SELECT time, level, message FROM logs WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
        return [LogEntry(*row) for row in rows]
