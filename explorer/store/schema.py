"""The registry's schema and its migrations.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a
database from version ``i`` to ``i + 1``; a new version is one function appended
to the list. Each migration runs inside the same ``BEGIN IMMEDIATE`` transaction
as the version bump, so a crash leaves the old version intact, and two processes
opening a fresh workspace at once do not both migrate it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from explorer.store.records import WorkspaceError

Migration = Callable[[sqlite3.Connection], None]


_V1_STATEMENTS = (
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        summary TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        started REAL NOT NULL,
        ended REAL,
        updated REAL,
        progress REAL NOT NULL DEFAULT 0,
        pid INTEGER,
        host TEXT,
        start_token TEXT
    )""",
    "CREATE INDEX runs_by_start ON runs (started)",
    "CREATE INDEX runs_by_status ON runs (status)",
    """CREATE TABLE metrics (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        step INTEGER NOT NULL,
        value REAL,
        time REAL NOT NULL
    )""",
    "CREATE INDEX metrics_by_run ON metrics (run_id, name, step)",
    """CREATE TABLE artifacts (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        time REAL NOT NULL
    )""",
    "CREATE INDEX artifacts_by_run ON artifacts (run_id)",
    """CREATE TABLE logs (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        time REAL NOT NULL
    )""",
    "CREATE INDEX logs_by_run ON logs (run_id)",
)


def _v1_initial(conn: sqlite3.Connection) -> None:
    # One statement at a time: executescript() would commit the open transaction.
    for statement in _V1_STATEMENTS:
        conn.execute(statement)


MIGRATIONS: list[Migration] = [_v1_initial]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection, db_path: Path, migrations: Sequence[Migration]
) -> int:
    """Bring ``conn`` (in autocommit mode) up to ``len(migrations)``; return it.

    Raises :class:`WorkspaceError` when the database is newer than ``migrations``.
    """
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = user_version(conn)
        if version > target:
            raise WorkspaceError(
                f"{db_path}: this workspace was made by a newer version of "
                f"Robustness Explorer (schema v{version}; this version reads up to "
                f"v{target}). Update the app or choose another workspace."
            )
        for number in range(version, target):
            migrations[number](conn)
        if version != target:
            # PRAGMA takes no bound parameters; ``target`` is an int we computed.
            conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return target
