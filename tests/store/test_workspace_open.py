"""Opening workspaces: schema, migrations, bad files, owners, concurrency."""

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from explorer.core.jobs import Metric
from explorer.store import SCHEMA_VERSION, Workspace, WorkspaceError, schema

# The v1 layout as release 0.1 wrote it, kept literally so a change to the v1
# migration (instead of a new v2) shows up here.
V1_LAYOUT = """
CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}', summary TEXT NOT NULL DEFAULT '{}',
    error TEXT, started REAL NOT NULL, ended REAL, updated REAL,
    progress REAL NOT NULL DEFAULT 0, pid INTEGER, host TEXT, start_token TEXT);
CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL, step INTEGER NOT NULL, value REAL, time REAL NOT NULL);
CREATE TABLE artifacts (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL, path TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE logs (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    level TEXT NOT NULL, message TEXT NOT NULL, time REAL NOT NULL);
INSERT INTO runs (id, kind, status, config, summary, started, ended, progress)
    VALUES ('20250101-000000-eval-abcd', 'eval', 'finished', '{"eps": 0.1}',
            '{"acc": 0.9}', 1735689600, 1735689660, 1.0);
INSERT INTO metrics VALUES ('20250101-000000-eval-abcd', 'acc', 0, 0.9, 1735689660);
PRAGMA user_version = 1;
"""
OLD_ID = "20250101-000000-eval-abcd"


def _write_v1(folder):
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "runs.sqlite")
    try:
        conn.executescript(V1_LAYOUT)
    finally:
        conn.close()


def test_wal_mode_and_schema_version(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        assert ws.journal_mode == "wal"
        assert ws.schema_version == SCHEMA_VERSION >= 1


def test_v1_database_opens_and_keeps_data(tmp_path):
    _write_v1(tmp_path / "ws")
    with Workspace(tmp_path / "ws") as ws:
        run = ws.get(OLD_ID)
        assert run.summary == {"acc": 0.9}
        assert ws.metrics(OLD_ID) == {"acc": [(0, 0.9)]}


def test_migration_to_next_version_runs_and_keeps_data(tmp_path, monkeypatch):
    _write_v1(tmp_path / "ws")

    def v2_tags(conn):
        conn.execute("ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, v2_tags])
    with Workspace(tmp_path / "ws") as ws:
        assert ws.schema_version == 2
        assert ws.get(OLD_ID).config == {"eps": 0.1}
        assert ws._db.query("SELECT tags FROM runs") == [("",)]
        ws.create_run("eval", {})
    with Workspace(tmp_path / "ws") as ws:  # already migrated: nothing to do
        assert ws.schema_version == 2
        assert len(ws.runs()) == 2


def test_failed_migration_leaves_old_version(tmp_path, monkeypatch):
    _write_v1(tmp_path / "ws")

    def broken(conn):
        conn.execute("ALTER TABLE runs ADD COLUMN tags TEXT")
        conn.execute("ALTER TABLE no_such_table ADD COLUMN x TEXT")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(WorkspaceError, match="no_such_table"):
        Workspace(tmp_path / "ws")
    monkeypatch.undo()
    with Workspace(tmp_path / "ws") as ws:
        assert ws.schema_version == 1
        columns = [row[1] for row in ws._db.query("PRAGMA table_info(runs)")]
        assert "tags" not in columns


def test_newer_database_is_refused(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        ws._db.query(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(WorkspaceError, match="newer version") as info:
        Workspace(tmp_path / "ws")
    assert "runs.sqlite" in str(info.value)


def test_corrupt_database_names_the_file(tmp_path):
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "runs.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(WorkspaceError, match="not a database") as info:
        Workspace(folder)
    assert str(folder / "runs.sqlite") in str(info.value)


def test_path_that_is_a_file(tmp_path):
    target = tmp_path / "plain.txt"
    target.write_text("hello")
    with pytest.raises(WorkspaceError, match="is a file") as info:
        Workspace(target)
    assert str(target) in str(info.value)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root ignores permissions"
)
def test_unwritable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(WorkspaceError, match="locked"):
            Workspace(folder / "ws")
    finally:
        folder.chmod(0o700)


def test_unwritable_folder_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(WorkspaceError, match="not writable") as info:
        Workspace(tmp_path / "ws")
    assert str(tmp_path / "ws") in str(info.value)


def _set_owner(ws, run_id, **columns):
    sets = ", ".join(f"{name} = ?" for name in columns)
    with ws._db.write() as conn:
        conn.execute(
            f"UPDATE runs SET {sets} WHERE id = ?", [*columns.values(), run_id]
        )


def test_runs_of_dead_processes_become_interrupted(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Workspace(tmp_path / "ws") as ws:
        gone = ws.create_run("train", {})
        mine = ws.create_run("train", {})
        reused = ws.create_run("train", {})
        _set_owner(ws, gone.id, pid=dead.pid)
        # Same pid as a live process (ours), but started by another process.
        _set_owner(ws, reused.id, start_token="other-boot:1")
    with Workspace(tmp_path / "ws") as ws:
        assert ws.get(gone.id).status == "interrupted"
        assert ws.get(gone.id).ended is not None
        assert ws.get(mine.id).status == "running"
        assert ws.get(reused.id).status == "interrupted"


def test_runs_from_other_hosts_are_left_alone_for_a_day(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        recent = ws.create_run("train", {})
        stale = ws.create_run("train", {})
        _set_owner(ws, recent.id, host="other-host", pid=1)
        old = time.time() - 2 * 24 * 3600
        _set_owner(ws, stale.id, host="other-host", pid=1, started=old, updated=old)
        assert ws.mark_interrupted() == [stale.id]
        assert ws.get(recent.id).status == "running"


def test_two_threads_record_concurrently(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        runs = [ws.create_run("train", {}) for _ in range(2)]
        errors = []

        def work(run_id):
            try:
                for step in range(150):
                    ws.record(run_id, Metric("loss", float(step), step))
                    ws.log_metrics(runs[0].id, [("shared", step, 1.0)])
            except Exception as exc:  # noqa: BLE001 - reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(r.id,)) for r in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for run in runs:
            assert [s for s, _ in ws.metrics(run.id, "loss")] == list(range(150))
        assert len(ws.metrics(runs[0].id, "shared")) == 300


def test_two_workspace_objects_see_each_other(tmp_path):
    with Workspace(tmp_path / "ws") as a, Workspace(tmp_path / "ws") as b:
        run = a.create_run("eval", {})
        assert [r.id for r in b.runs()] == [run.id]
        b.record(run.id, Metric("acc", 0.7))
        b.finish(run.id, "finished")
        assert a.get(run.id).status == "finished"
        assert a.metrics(run.id, "acc") == [(0, 0.7)]


def test_two_processes_write_the_same_workspace(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from explorer.store import Workspace
        with Workspace(sys.argv[1]) as ws:
            run = ws.create_run("attack", {"child": True})
            for step in range(100):
                ws.log_metrics(run.id, [("loss", step, 1.0)])
            ws.finish(run.id, "finished")
        """
    )
    with Workspace(tmp_path / "ws") as ws:
        mine = ws.create_run("eval", {})
        child = subprocess.Popen([sys.executable, "-c", script, str(ws.path)])
        for step in range(100):
            ws.log_metrics(mine.id, [("acc", step, 0.5)])
        assert child.wait(timeout=60) == 0
        (theirs,) = ws.runs(kind="attack")
        assert theirs.status == "finished"
        assert theirs.pid == child.pid
        assert len(ws.metrics(theirs.id, "loss")) == 100
        assert len(ws.metrics(mine.id, "acc")) == 100


_OPEN_AT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from explorer.store.database import Database
    start = float(sys.argv[2])
    while time.time() < start:  # all processes open at the same moment
        pass
    try:
        Database(Path(sys.argv[1])).close()
    except Exception as exc:
        print(exc)
""")


@pytest.mark.slow
def test_processes_opening_a_new_workspace_together_all_succeed(tmp_path):
    """Switching a new database to WAL answers 'database is locked' at once to
    a second process (no busy handler there): 6 of 160 opens failed before
    the open was retried."""
    errors = []
    for trial in range(10):
        path = tmp_path / f"ws{trial}" / "runs.sqlite"
        path.parent.mkdir()
        start = time.time() + 1.5
        workers = [subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, str(path), str(start)],
            stdout=subprocess.PIPE, text=True) for _ in range(8)]
        errors += [w.communicate(timeout=60)[0].strip() for w in workers]
    assert [e for e in errors if e] == []
