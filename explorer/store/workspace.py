"""The workspace: a SQLite registry of runs plus one folder per run.

Layout::

    <workspace>/runs.sqlite        registry (WAL mode)
    <workspace>/runs/<id>/         the run's folder, handed to the job
        config.json                written when the run is created
        summary.json               written when the run finishes

Every call that writes commits before it returns, so a crash or kill loses at
most the event in progress. Core jobs never see this class: their caller (GUI
runner or CLI) creates the run, hands the job ``run_dir(id)`` and passes each
event to :meth:`Workspace.record`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

from explorer.core.fileio import atomic_write_text
from explorer.store import owner
from explorer.store import recipe as recipes
from explorer.store.database import Database
from explorer.store.records import (
    COLUMNS,
    FINAL_STATUSES,
    INTERRUPTED,
    RUNNING,
    RunRecord,
    WorkspaceError,
    dumps,
    record_from_row,
)
from explorer.store.rundata import RUNS_DIR, RunDataMixin

log = logging.getLogger(__name__)
DB_NAME = "runs.sqlite"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_location() -> Path:
    """``$EXPLORER_HOME`` if set, else ``<user data>/robustness-explorer/workspace``."""
    env = os.environ.get("EXPLORER_HOME")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_data_path("robustness-explorer") / "workspace"


class Workspace(RunDataMixin):
    """A folder of runs with their registry. Close it (or use ``with``) when done."""

    PROGRESS_INTERVAL = 0.5  # seconds between stored progress updates of one run

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_location()
        if self.path.exists() and not self.path.is_dir():
            raise WorkspaceError(f"{self.path}: is a file, not a workspace folder")
        try:
            (self.path / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(
                f"{self.path}: cannot create workspace: {exc}"
            ) from exc
        if not os.access(self.path, os.W_OK):
            raise WorkspaceError(f"{self.path}: workspace folder is not writable")
        self.db_path = self.path / DB_NAME
        self._db = Database(self.db_path)
        self._progress_lock = threading.Lock()
        self._progress_written: dict[str, float] = {}
        self._clock = time.monotonic
        try:
            self._mark_interrupted_if_possible()
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        return cls(path)

    def close(self) -> None:
        self._db.close()

    @property
    def closed(self) -> bool:
        return self._db.closed

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        return self._db.version()

    @property
    def journal_mode(self) -> str:
        return self._db.journal_mode()

    # --- runs -----------------------------------------------------------------

    def create_run(
        self, kind: str, config: dict[str, Any], title: str = "", device: str = ""
    ) -> RunRecord:
        """Register a running run owned by this process and make its folder,
        with its ``recipe.toml`` (``device``: where it runs, when the config
        does not say)."""
        if not isinstance(kind, str) or not kind.strip():
            raise WorkspaceError(f"run kind must be a non-empty string, got {kind!r}")
        slug = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "run"
        config_text = dumps(config)
        folder = self._reserve_folder(slug)
        run_id = folder.name
        me = owner.current_owner()
        now = time.time()
        try:
            atomic_write_text(folder / "config.json", dumps(config, indent=2) + "\n")
            with self._db.write() as conn:
                conn.execute(
                    "INSERT INTO runs (id, kind, title, status, config, started, "
                    "updated, pid, host, start_token) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (run_id, kind, title, RUNNING, config_text, now, now,
                     me.pid, me.host, me.token),
                )  # fmt: skip
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        _write_recipe(folder, kind, config, device)
        return self.get(run_id)

    def recipe(self, run_id: str) -> recipes.Recipe:
        """The run's recipe: its ``recipe.toml``, or for a run from before
        recipes existed one built from its stored config (no checksums)."""
        record = self.get(run_id)
        path = self.path / RUNS_DIR / run_id / recipes.FILENAME
        if path.is_file():
            return recipes.read(path)
        return recipes.from_stored(record.kind, record.config)

    def _reserve_folder(self, slug: str) -> Path:
        # mkdir is the atomic claim on an id, across threads and processes.
        for _ in range(50):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder = self.path / RUNS_DIR / f"{stamp}-{slug}-{secrets.token_hex(2)}"
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise WorkspaceError(
                    f"{folder}: cannot create run folder: {exc}"
                ) from exc
            return folder
        raise WorkspaceError(f"{self.path}: could not find a free run id for {slug!r}")

    def run_dir(self, run_id: str) -> Path:
        """The run's folder (jobs write their files here)."""
        self.get(run_id)
        return self.path / RUNS_DIR / run_id

    def get(self, run_id: str) -> RunRecord:
        rows = (
            self._db.query(f"SELECT {COLUMNS} FROM runs WHERE id = ?", (run_id,))
            if isinstance(run_id, str) and _ID_RE.match(run_id)
            else []
        )
        if not rows:
            raise self._unknown(run_id)
        return record_from_row(rows[0])

    def runs(
        self,
        kind: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered by kind and status."""
        where, params = [], []
        for column, value in (("kind", kind), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [record_from_row(row) for row in self._db.query(sql, params)]

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """Close a run as finished, failed or cancelled; write ``summary.json``.

        ``summary=None`` keeps the summary stored by a :class:`Done` event.
        Finishing a run twice overwrites the first outcome.
        """
        if status not in FINAL_STATUSES:
            raise WorkspaceError(
                f"invalid run status {status!r}; allowed: {', '.join(FINAL_STATUSES)}"
            )
        now = time.time()
        with self._db.write() as conn:
            sets = "status = ?, ended = ?, updated = ?, error = ?"
            params: list[Any] = [status, now, now, error]
            if status == "finished":
                sets += ", progress = 1.0"
            if summary is not None:
                sets += ", summary = ?"
                params.append(dumps(summary))
            cur = conn.execute(
                f"UPDATE runs SET {sets} WHERE id = ?", [*params, run_id]
            )
            if cur.rowcount == 0:
                raise self._unknown(run_id)
        with self._progress_lock:
            self._progress_written.pop(run_id, None)
        record = self.get(run_id)
        text = dumps(
            {k: v for k, v in record.to_json().items() if k != "config"}, indent=2
        )
        atomic_write_text(self.path / RUNS_DIR / run_id / "summary.json", text + "\n")
        return record

    def resume(self, run_id: str) -> RunRecord:
        """Mark a stopped run as running again, owned by this process."""
        me = owner.current_owner()
        now = time.time()
        with self._db.write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, ended = NULL, error = NULL, updated = ?, "
                "pid = ?, host = ?, start_token = ? WHERE id = ?",
                (RUNNING, now, me.pid, me.host, me.token, run_id),
            )
            if cur.rowcount == 0:
                raise self._unknown(run_id)
        return self.get(run_id)

    def _mark_interrupted_if_possible(self) -> None:
        # Housekeeping: on a full disk the workspace must still open (to list
        # runs); the marking happens at the next open that can write.
        try:
            self.mark_interrupted()
        except WorkspaceError as exc:
            log.warning("could not mark interrupted runs: %s", exc)

    def mark_interrupted(self) -> list[str]:
        """Mark runs whose owner process is gone as interrupted; return their ids.

        Runs on this host are checked by pid and start token; runs from another
        host only when they showed no activity for a day (see ``store.owner``).
        """
        here = owner.current_owner()
        now = time.time()
        rows = self._db.query(
            "SELECT id, pid, host, start_token, started, updated FROM runs "
            "WHERE status = ?",
            (RUNNING,),
        )
        dead = [
            (rid, updated or started)
            for rid, pid, host, token, started, updated in rows
            if not owner.owner_alive(
                pid, host, token, last_activity=updated or started, now=now, here=here
            )
        ]
        if dead:
            with self._db.write() as conn:
                conn.executemany(
                    "UPDATE runs SET status = ?, ended = ? WHERE id = ? AND status = ?",
                    [(INTERRUPTED, last, rid, RUNNING) for rid, last in dead],
                )
        return [rid for rid, _ in dead]

    def delete_run(self, run_id: str) -> None:
        """Remove a run from the registry and delete its folder."""
        folder = self.run_dir(run_id)
        with self._db.write() as conn:
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        with self._progress_lock:
            self._progress_written.pop(run_id, None)
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise WorkspaceError(
                f"{folder}: run deleted but folder remains: {exc}"
            ) from exc


def _write_recipe(folder: Path, kind: str, config: dict[str, Any], device: str
                  ) -> None:
    """``recipe.toml`` of a new run; a failure is logged, the run goes on."""
    try:
        recipe = recipes.build(kind, config, device or str(config.get("device", "")))
        recipes.write(recipe, folder / recipes.FILENAME)
    except Exception as exc:  # noqa: BLE001 - a recipe never ends a run
        log.warning("run %s: could not write %s: %s", folder.name,
                    recipes.FILENAME, exc)
