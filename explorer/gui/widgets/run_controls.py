"""What the Training panel and the Denoiser Lab's Train tab share about their
one background training run: following its job handle, Stop, the progress
and failure lines, and the resume checks.

A mixin placed before ``QWidget`` in the bases. The host provides ``ctx``
(AppContext), ``status`` (a QLabel), ``refresh_runs()`` and its own
``_on_metric``, ``_on_snapshot``, ``_on_done`` and ``_on_cancelled``; it sets
``self.handle = None`` and ``self.run_id = None`` in ``__init__``.
"""

from __future__ import annotations

from explorer.core.jobs import Progress

EVENTS = ("metric", "snapshot", "progress", "done", "failed", "cancelled", "finished")
STOPPED = "run {run_id} stopped; its checkpoint is kept — select it {where} and " \
          "press Resume."


class TrainingRunMixin:
    """Stop, status lines and resume checks of one training job."""

    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.running

    def _follow(self, handle, *, resume: bool) -> None:
        """Route the job's events to the host's ``_on_<event>`` methods."""
        self.handle = handle
        for name in EVENTS:
            getattr(handle, name).connect(getattr(self, f"_on_{name}"))
        self.status.setText(f"{'resuming' if resume else 'starting'} {self.run_id}…")

    def _can_resume(self, run_id: str) -> bool:
        """Whether ``run_id`` left a checkpoint; says so in the status if not."""
        if (self.ctx.workspace.run_dir(run_id) / "last.pt").exists():
            return True
        self.status.setText(f"Run {run_id} has no checkpoint to resume from.")
        return False

    def stop(self) -> None:
        if self.running:
            self.handle.cancel()
            self.status.setText("stopping after the current batch…")

    def _on_progress(self, event: Progress) -> None:
        self.status.setText(f"run {self.run_id}: {event.label} "
                            f"({100 * event.done / max(event.total, 1):.0f}%)")

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"training failed: {message}")

    def _on_finished(self) -> None:
        self.handle = None
        self.refresh_runs()
