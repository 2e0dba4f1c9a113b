"""The workspace: a SQLite registry of runs plus one folder per run.

``explorer.store`` may use ``explorer.core`` but never Qt or ``explorer.gui``.
"""

from explorer.store.records import ArtifactEntry, LogEntry, RunRecord, WorkspaceError
from explorer.store.schema import SCHEMA_VERSION
from explorer.store.workspace import Workspace, default_location

__all__ = [
    "SCHEMA_VERSION",
    "ArtifactEntry",
    "LogEntry",
    "RunRecord",
    "Workspace",
    "WorkspaceError",
    "default_location",
]
