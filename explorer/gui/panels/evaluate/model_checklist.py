"""The models an evaluation compares: the session's model, built-ins, files
and finished training runs.

Each row is checkable and remembers where its model comes from; the models
themselves load inside the evaluation job, so the UI thread never waits.

The session's model is the one the Data & Model page holds, inference
wrapper included ("session model: fmnist-cnn-pgdat + bit-depth (3 bits)");
its row is there only while a model is loaded and follows the page's
changes. Other pages and jobs use that very module, so an evaluation never
does: :meth:`ModelChoice.loader` copies it when the evaluation starts, and
each job loads its own copy of that copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from explorer.core.defenses.best_weights import best_file
from explorer.core.models import files as model_files
from explorer.store import Workspace

MODEL_FILTER = model_files.FILE_FILTER
SESSION = "session"
SUFFIX = {"builtin": "built-in", "file": "file", "run": "training run"}


def session_name(source: str) -> str:
    return f"session model: {source or 'unnamed'}"


def copying_loader(model: Any) -> Callable[[], Any]:
    """A loader of copies of ``model`` as it is now: one copy taken here (on
    the caller's thread) and a fresh copy of that for every job that calls
    the loader, so no job shares a module with a page or another job. A model
    that cannot be copied fails the job with a message saying so."""
    try:
        snapshot = copy.deepcopy(model)
    except Exception as exc:  # noqa: BLE001 - any module's own __deepcopy__
        message = (f"the session model cannot be copied for the evaluation "
                   f"({type(exc).__name__}: {exc})")

        def refuse() -> Any:
            raise model_files.ModelError(message)
        return refuse
    return lambda: copy.deepcopy(snapshot)


@dataclass(frozen=True)
class ModelChoice:
    name: str  # shown in tables and legends
    kind: str  # "session", "builtin", "file" or "run"
    source: str  # the session model's source, built-in name or file path
    model: Any = field(default=None, compare=False, repr=False)  # "session" only

    def loader(self):
        """A function loading the model (called in the evaluation job); the
        session's model is copied now (:func:`copying_loader`)."""
        if self.kind == SESSION:
            return copying_loader(self.model)
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
    def _add(self, choice: ModelChoice, checked: bool, row: int | None = None) -> None:
        if choice.kind == SESSION:
            item = QListWidgetItem(choice.name)
            item.setToolTip(f"{choice.source}: the model of the Data & Model "
                            "page, inference wrapper included (evaluated on a "
                            "copy taken at Run)")
        else:
            item = QListWidgetItem(f"{choice.name}  ({SUFFIX[choice.kind]})")
            item.setToolTip(choice.source)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else
                           Qt.CheckState.Unchecked)
        row = self.list.count() if row is None else row
        self.list.blockSignals(True)
        self.list.insertItem(row, item)
        self.list.blockSignals(False)
        self._choices.insert(row, choice)
        self.changed.emit()

    def set_session_model(self, model: Any, source: str) -> None:
        """The session's model as the first row (``None``: no row); a checked
        row stays checked when the model or its wrapper changes."""
        old = self.session_choice()
        checked = False
        if old is not None:
            row = self._choices.index(old)
            checked = self.list.item(row).checkState() == Qt.CheckState.Checked
            if model is old.model and source == old.source:
                return
            self.list.blockSignals(True)
            self.list.takeItem(row)
            self.list.blockSignals(False)
            del self._choices[row]
        if model is not None:
            self._add(ModelChoice(session_name(source), SESSION, source, model),
                      checked, row=0)
        elif old is not None:
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

    def session_choice(self) -> ModelChoice | None:
        return next((c for c in self._choices if c.kind == SESSION), None)

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
