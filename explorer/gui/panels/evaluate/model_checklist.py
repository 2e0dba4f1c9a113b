"""The models an evaluation compares: built-ins, files and finished training runs.

Each row is checkable and remembers where its model comes from; the models
themselves load inside the evaluation job, so the UI thread never waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.core import models
from explorer.core.defenses.trainer import best_file
from explorer.core.models import files as model_files
from explorer.store import Workspace

MODEL_FILTER = model_files.FILE_FILTER


@dataclass(frozen=True)
class ModelChoice:
    name: str  # shown in tables and legends
    kind: str  # "builtin", "file" or "run"
    source: str  # built-in name or file path

    def loader(self):
        """A function loading the model (called in the evaluation job)."""
        if self.kind == "builtin":
            return lambda: models.load_builtin(self.source)
        return lambda: models.load(self.source)


class ModelChecklist(QWidget):
    """Checkable model rows with "Add file…" and "Refresh runs" buttons."""

    changed = Signal()
    message = Signal(str)  # why a file was not added

    def __init__(self, workspace: Workspace | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.list = QListWidget()
        self.list.itemChanged.connect(self._on_item_changed)
        self.add_button = QPushButton("Add file…")
        self.add_button.setToolTip("a safetensors, PyTorch or TorchScript model file")
        self.add_button.clicked.connect(self._on_add_clicked)
        self.refresh_button = QPushButton("Refresh runs")
        self.refresh_button.setToolTip("list finished training runs of the workspace")
        self.refresh_button.clicked.connect(self._on_refresh_clicked)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.refresh_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.list)
        box.addLayout(buttons)
        self._choices: list[ModelChoice] = []
        for name in models.builtin_names():
            self._add(ModelChoice(name, "builtin", name), checked=False)
        self.refresh_runs(workspace)

    # -- rows -------------------------------------------------------------------
    def _add(self, choice: ModelChoice, checked: bool) -> None:
        suffix = {"builtin": "built-in", "file": "file", "run": "training run"}
        item = QListWidgetItem(f"{choice.name}  ({suffix[choice.kind]})")
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else
                           Qt.CheckState.Unchecked)
        item.setToolTip(choice.source)
        self.list.blockSignals(True)
        self.list.addItem(item)
        self.list.blockSignals(False)
        self._choices.append(choice)
        self.changed.emit()

    def add_file(self, path: str) -> str | None:
        """Add a model file (checked); returns why not, or None."""
        p = Path(path)
        if not p.is_file():
            return f"{path} is not a file."
        if any(c.kind == "file" and c.source == str(p) for c in self._choices):
            return f"{p.name} is already in the list."
        taken = {c.name for c in self._choices}
        name = p.stem if p.stem not in taken else f"{p.parent.name}/{p.stem}"
        self._add(ModelChoice(name, "file", str(p)), checked=True)
        return None

    def refresh_runs(self, ws: Workspace | None) -> None:
        """List finished training runs that saved weights (kept checks stay)."""
        checked = set(self.checked_names())
        keep = [(c, c.name in checked) for c in self._choices if c.kind != "run"]
        runs = []
        for record in ws.runs(kind="train") if ws is not None else []:
            # best.safetensors, or best.pt2 for a fine-tuned torch.export program
            weights = best_file(ws.run_dir(record.id))
            if record.status == "finished" and weights is not None:
                name = f"run {record.id}"
                runs.append((ModelChoice(name, "run", str(weights)), name in checked))
        self.list.blockSignals(True)
        self.list.clear()
        self.list.blockSignals(False)
        self._choices = []
        for choice, on in keep + runs:
            self._add(choice, on)

    # -- queries ------------------------------------------------------------------
    def choices(self) -> list[ModelChoice]:
        return list(self._choices)

    def checked(self) -> list[ModelChoice]:
        return [c for i, c in enumerate(self._choices)
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def checked_names(self) -> list[str]:
        return [c.name for c in self.checked()]

    def set_checked(self, names: list[str]) -> None:
        for i, choice in enumerate(self._choices):
            self.list.item(i).setCheckState(
                Qt.CheckState.Checked if choice.name in names else
                Qt.CheckState.Unchecked)

    # -- reactions ----------------------------------------------------------------
    @Slot(QListWidgetItem)
    def _on_item_changed(self, _item: QListWidgetItem) -> None:
        self.changed.emit()

    @Slot()
    def _on_refresh_clicked(self) -> None:
        self.refresh_runs(self.workspace)

    @Slot()
    def _on_add_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a model file", "",
                                              MODEL_FILTER)
        if path:
            problem = self.add_file(path)
            if problem:
                self.message.emit(problem)
