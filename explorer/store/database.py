"""One SQLite connection shared by threads, with clear errors.

The connection runs in autocommit mode; every write is an explicit
``BEGIN IMMEDIATE ... COMMIT`` so a crash loses at most the call in progress
and two processes wait for each other (``busy_timeout``) instead of failing
half-way through a read-then-write upgrade.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from explorer.core.fileio import reason
from explorer.store import schema
from explorer.store.records import WorkspaceError

BUSY_TIMEOUT_S = 10.0
# SQLite's errors, and the one Python raises when a damaged file's error
# message (a table or index name, say) is not valid UTF-8.
DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)


class _Busy(Exception):
    """Another process holds the lock while this one opens the database."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


class Database:
    """A locked connection to ``runs.sqlite``; safe to use from several threads."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._lock = threading.RLock()
        # Processes opening one new workspace together: switching to WAL and
        # the first recovery answer "database is locked" at once, without the
        # busy handler (4 processes: 6 of 160 opens failed); wait and retry.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn: sqlite3.Connection | None = self._open(db_path)
                return
            except _Busy:
                if time.monotonic() > deadline:
                    raise WorkspaceError(
                        f"{db_path}: cannot open the run database: it stayed "
                        f"locked by another process for {BUSY_TIMEOUT_S:g} s"
                    ) from None
                time.sleep(0.02 + 0.08 * random.random())

    @staticmethod
    def _open(db_path: Path) -> sqlite3.Connection:
        conn = None
        try:
            conn = sqlite3.connect(
                db_path,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            # Text damaged on disk comes back with replacement characters
            # instead of failing every read of the table.
            conn.text_factory = _decode_text
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise WorkspaceError(f"{db_path}: cannot switch to WAL mode ({mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            schema.migrate(conn, db_path, schema.MIGRATIONS)
        except WorkspaceError:
            if conn is not None:
                conn.close()
            raise
        except DB_ERRORS as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise _Busy from exc
            raise WorkspaceError(
                f"{db_path}: cannot open the run database: {reason(exc)}"
            ) from exc
        return conn

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise WorkspaceError(f"{self.path}: the workspace is closed")
        return self._conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed on success and rolled back on error."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except DB_ERRORS as exc:
                raise WorkspaceError(
                    f"{self.path}: cannot write: {reason(exc)}"
                ) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, DB_ERRORS):
                    raise WorkspaceError(
                        f"{self.path}: write failed: {reason(exc)}"
                    ) from exc
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except DB_ERRORS as exc:
                raise WorkspaceError(
                    f"{self.path}: read failed: {reason(exc)}"
                ) from exc

    def version(self) -> int:
        with self._lock:
            return schema.user_version(self._connection())

    def journal_mode(self) -> str:
        return str(self.query("PRAGMA journal_mode")[0][0])
