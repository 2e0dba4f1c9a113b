"""Attack the first N images of a split; the figures that come back."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core.attacks.jobs import attack_dataset
from explorer.gui.context import AppContext
from explorer.gui.widgets.job_controls import JobControls


class JobBox(QWidget):
    """N and the shared job controls around one job slot.

    ``run_requested`` asks the panel for the attack; the panel answers with
    :meth:`start` (or with a message in ``status``).
    """

    run_requested = Signal()

    def __init__(self, ctx: AppContext, run_text: str, n: int, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.n = QSpinBox()
        self.n.setRange(1, 1_000_000)
        self.n.setValue(n)
        self.n.setToolTip("how many images of the split, from the first")
        self.controls = JobControls(run_text)
        self.controls.row.insertWidget(0, QLabel("N"))
        self.controls.row.insertWidget(1, self.n)
        self.controls.run_requested.connect(self.run_requested)
        self.run_button = self.controls.run_button
        self.cancel_button = self.controls.cancel_button
        self.progress, self.status = self.controls.progress, self.controls.status

    @property
    def job(self):
        return self.controls.handle

    @property
    def running(self) -> bool:
        return self.controls.running

    def _started(self, job, text: str) -> None:
        self.controls.follow(job, text)

    @Slot()
    def cancel(self) -> None:
        self.controls.cancel()


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
        form = QFormLayout()
        for key, title in self.FIELDS:
            self.labels[key].setStyleSheet("font-size: 15px;")
            form.addRow(title, self.labels[key])
        box = QVBoxLayout(self)
        box.addWidget(self.controls)
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
