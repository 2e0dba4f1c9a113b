"""What every panel receives: the session, the job runner, the workspace, settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings

from explorer.core.jobs import Done, Event
from explorer.core.loading import load_data_job, load_model_job
from explorer.gui.runner import JobHandle, JobRunner
from explorer.gui.session import Session
from explorer.store import Workspace, WorkspaceError

log = logging.getLogger(__name__)
_OUTCOME = {"done": "finished", "failed": "failed", "cancelled": "cancelled"}


def workspace_runs(ws: Workspace | None, kind: str) -> list:
    """The workspace's runs of ``kind``; none when it is missing or unusable
    (closed at quit, its disk gone): a list to show never raises in a slot."""
    if ws is None:
        return []
    try:
        return ws.runs(kind=kind)
    except WorkspaceError as exc:
        log.warning("cannot list %s runs: %s", kind, exc)
        return []


@dataclass
class AppContext:
    session: Session
    runner: JobRunner
    workspace: Workspace | None
    settings: QSettings

    def load_data(self, name: str, split: str, *, slot: str) -> JobHandle:
        """Load a data set in the background; it becomes the session's data
        when done (panels' demos and the data chooser use this)."""
        job = self.runner.start(load_data_job, name=f"load {name}", slot=slot,
                                job_args=(name, split))
        job.done.connect(self._set_data)
        return job

    def load_builtin_model(self, name: str, *, slot: str) -> JobHandle:
        """Load a built-in model in the background into the session."""
        job = self.runner.start(load_model_job, name="load model", slot=slot,
                                job_args=(name,), builtin=True)
        job.done.connect(self._set_model)
        return job

    def _set_data(self, result: dict[str, Any]) -> None:
        self.session.set_data(result["dataset"], result["name"], result["split"])

    def _set_model(self, result: dict[str, Any]) -> None:
        self.session.set_model(result["model"], result["source"])

    def run_recorder(
        self, kind: str, config: dict[str, Any], title: str = ""
    ) -> _RunRecorder | None:
        """A new workspace run that keeps a job's events and outcome.

        Pass it as ``recorder=`` to :meth:`JobRunner.start`; ``None`` when no
        workspace could be opened (the job still runs).
        """
        if self.workspace is None:
            return None
        run = self.workspace.create_run(kind, config, title=title,
                                        device=str(self.session.device))
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
