"""What every panel receives: the session, the job runner, the workspace, settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings

from explorer.core.jobs import Done, Event
from explorer.gui.runner import JobRunner
from explorer.gui.session import Session
from explorer.store import Workspace

_OUTCOME = {"done": "finished", "failed": "failed", "cancelled": "cancelled"}


@dataclass
class AppContext:
    session: Session
    runner: JobRunner
    workspace: Workspace | None
    settings: QSettings

    def run_recorder(
        self, kind: str, config: dict[str, Any], title: str = ""
    ) -> _RunRecorder | None:
        """A new workspace run that keeps a job's events and outcome.

        Pass it as ``recorder=`` to :meth:`JobRunner.start`; ``None`` when no
        workspace could be opened (the job still runs).
        """
        if self.workspace is None:
            return None
        run = self.workspace.create_run(kind, config, title=title)
        return _RunRecorder(self.workspace, run.id)

    def resume_recorder(self, run_id: str) -> _RunRecorder | None:
        """Mark a stopped run as running again and record into it."""
        if self.workspace is None:
            return None
        self.workspace.resume(run_id)
        return _RunRecorder(self.workspace, run_id)


class _RunRecorder:
    """Called from the worker thread; the workspace serialises its writes."""

    def __init__(self, workspace: Workspace, run_id: str) -> None:
        self.workspace, self.run_id = workspace, run_id

    def record(self, event: Event) -> None:
        if isinstance(event, Done):
            return  # results may hold arrays and models; close() keeps the summary
        self.workspace.record(self.run_id, event)

    def close(self, state: str, results: dict[str, Any], error: str | None) -> None:
        summary = {k: v for k, v in results.items() if _plain(v)}
        self.workspace.finish(
            self.run_id, _OUTCOME.get(state, "failed"), summary=summary, error=error
        )


def _plain(value: Any) -> bool:
    """JSON-friendly values only (results may hold models or datasets)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
