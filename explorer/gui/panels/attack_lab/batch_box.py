"""Attack the first N images of a split; the figures that come back."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core.attacks.jobs import attack_dataset
from explorer.gui.context import AppContext


class JobBox(QWidget):
    """N, Run, Cancel, a progress bar and a status line around one job slot.

    ``run_requested`` asks the panel for the attack; the panel answers with
    :meth:`start` (or with a message in ``status``).
    """

    run_requested = Signal()

    def __init__(self, ctx: AppContext, run_text: str, n: int, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.job = None
        self.n = QSpinBox()
        self.n.setRange(1, 1_000_000)
        self.n.setValue(n)
        self.n.setToolTip("how many images of the split, from the first")
        self.run_button = QPushButton(run_text)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def _started(self, job, text: str) -> None:
        job.progress.connect(self._on_progress)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_finished)
        self.job = job
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.run_button.setEnabled(False)
        self.status.setText(text)

    @Slot()
    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    @Slot(object)
    def _on_progress(self, p) -> None:
        self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Failed: {message}")

    @Slot()
    def _on_cancelled(self) -> None:
        self.status.setText("Cancelled.")

    @Slot()
    def _on_finished(self) -> None:
        self.cancel_button.setEnabled(False)
        self.run_button.setEnabled(True)


class BatchBox(JobBox):
    """Success rate, accuracies, mean perturbation sizes and speed."""

    FIELDS = (("success_rate", "success rate (of the clean-correct)"),
              ("clean_acc", "clean accuracy"), ("robust_acc", "robust accuracy"),
              ("mean_linf", "mean l-inf"), ("mean_l2", "mean l2"),
              ("mean_l1", "mean l1"), ("seconds", "time"),
              ("images_per_second", "speed"))  # fmt: skip

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, "Attack the first N", 500, parent)
        self.status.setText("Attacks the first N images of the current split with "
                            "the attack chosen on the left.")
        self.labels = {key: QLabel("—") for key, _ in self.FIELDS}
        row = QHBoxLayout()
        row.addWidget(QLabel("N"))
        row.addWidget(self.n)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        form = QFormLayout()
        for key, title in self.FIELDS:
            self.labels[key].setStyleSheet("font-size: 15px;")
            form.addRow(title, self.labels[key])
        box = QVBoxLayout(self)
        box.addLayout(row)
        box.addWidget(self.progress)
        box.addWidget(self.status)
        box.addLayout(form)
        box.addStretch(1)

    def start(self, attack: str, params: dict[str, Any], config: dict) -> None:
        s = self.ctx.session
        n = min(self.n.value(), len(s.dataset))
        config = {**config, "mode": "batch", "n": n}
        job = self.ctx.runner.start(
            attack_dataset, name=f"attack {attack} ×{n}", slot="attack/batch",
            job_args=(s.model, s.dataset), attack=attack, params=params, n=n,
            seed=0, device=s.device,
            recorder=self.ctx.run_recorder("attack", config),
        )
        job.done.connect(self._on_done)
        for label in self.labels.values():
            label.setText("—")
        self._started(job, f"attacking {n} images with {attack}…")

    @Slot(dict)
    def _on_done(self, r: dict) -> None:
        self.progress.setValue(self.progress.maximum())
        for key, label in self.labels.items():
            label.setText(_figure(key, r.get(key)))
        self.status.setText(f"{r.get('n', '?')} images attacked with "
                            f"{r.get('attack', 'the attack')}.")


def _figure(key: str, value: Any) -> str:
    if value is None or value != value:  # missing or NaN
        return "—"
    if key in {"success_rate", "clean_acc", "robust_acc"}:
        return f"{100 * value:.1f}%"
    if key == "mean_linf":
        return f"{value:.4f} = {255 * value:.1f}/255"
    if key == "seconds":
        return f"{value:.2f} s"
    if key == "images_per_second":
        return f"{value:,.0f} images/s"
    return f"{value:.4f}"
