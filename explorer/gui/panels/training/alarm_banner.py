"""A visible warning about a training run, with a way to the best checkpoint."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from explorer.core.defenses.alarms import MEANING, Alarm
from explorer.core.loading import load_model_job
from explorer.gui.context import AppContext


def rich_tip(*paragraphs: str) -> str:
    """A tooltip Qt wraps (rich text), one paragraph each."""
    return "".join(f"<p>{escape(p, quote=False)}</p>" for p in paragraphs if p)


class AlarmBanner(QFrame):
    """Title, explanation, "Use best checkpoint (epoch N)" and "Dismiss".

    The button loads the run's best weights (``best.safetensors``, or
    ``best.pt2`` for a fine-tuned torch.export program) in a job and makes it
    the session's model.
    """

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("alarm")
        self.setStyleSheet("#alarm { background: #fff4e5; border: 1px solid #e65100;"
                           " border-radius: 4px; }")
        self.title = QLabel()
        self.title.setStyleSheet("color: #b23c00; font-weight: 700;")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.note = QLabel()
        self.button = QPushButton()
        self.button.clicked.connect(self.use_best)
        self.close_button = QPushButton("Dismiss")
        self.close_button.clicked.connect(self.hide)
        text = QVBoxLayout()
        for label in (self.title, self.text, self.note):
            text.addWidget(label)
        row = QHBoxLayout(self)
        row.addLayout(text, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.button)
        buttons.addWidget(self.close_button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        self.alarm: Alarm | None = None
        self.best_path: Path | None = None
        self.hide()

    def show_alarm(self, alarm: Alarm, best_path: Path, reason: str) -> None:
        """Show ``alarm``; its tooltip says what the alarm means and
        ``reason``, why it is watched for this run (its method)."""
        self.alarm, self.best_path = alarm, best_path
        self.setToolTip(rich_tip(MEANING[alarm.kind], reason))
        self.title.setText(alarm.title)
        self.text.setText(alarm.explanation)
        self.note.setText("")
        self.button.setText(f"Use best checkpoint (epoch {alarm.best_epoch})")
        self.button.setEnabled(best_path.exists())
        self.show()

    def clear(self) -> None:
        self.alarm = None
        self.hide()

    @Slot()
    def use_best(self) -> None:
        if self.alarm is None or self.best_path is None:
            return
        job = self.ctx.runner.start(load_model_job, name="load best checkpoint",
                                    slot="training/best",
                                    job_args=(str(self.best_path),), builtin=False)
        job.done.connect(self._on_loaded)
        job.failed.connect(self.note.setText)
        self.note.setText(f"loading the epoch {self.alarm.best_epoch} checkpoint…")

    @Slot(dict)
    def _on_loaded(self, result: dict) -> None:
        self.ctx.session.set_model(result["model"], result["source"])
        self.note.setText(f"The session now uses {result['source']}.")
