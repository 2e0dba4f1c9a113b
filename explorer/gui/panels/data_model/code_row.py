"""The model box's "Model code…" row: a Python file and the class or factory
in it that builds the network a weights file is loaded into.

Choosing a file parses it (nothing runs) to offer the classes and functions
it defines. Building the network runs the file, so the row asks before the
first use of each file's content; the answer is remembered by the content's
SHA-256 (settings ``model/trusted_code``), and a changed file is asked about
again. The choice is kept between launches, only while the file still has
the content that was trusted.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QWidget,
)

from explorer.core.models import ModelError
from explorer.core.models import code as model_code

TRUSTED_KEY = "model/trusted_code"
CHOICE_KEY = "model/code"


class CodeRow(QWidget):
    """Emits ``changed`` when the model code is chosen or cleared."""

    changed = Signal()
    problem = Signal(str)  # a file that cannot be offered, in one line

    def __init__(self, settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.ref: str | None = None  # FILE.py:NAME
        self.digest: str | None = None  # of the content the user trusted
        self.button = QPushButton("Model code…")
        self.button.setToolTip(
            "A Python file and the class or factory in it that builds the "
            "network; the weights file you open is loaded into it. This RUNS "
            "the file's code: you are asked once per file content.")
        self.button.clicked.connect(self.choose)
        self.label = QLabel("none")
        self.label.setWordWrap(True)
        self.clear_button = QPushButton("×")
        self.clear_button.setToolTip("Stop using model code")
        self.clear_button.setFixedWidth(28)
        self.clear_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.clear_button)
        self._restore()

    # -- state ------------------------------------------------------------------
    def _trusted(self) -> list[str]:
        value = self.settings.value(TRUSTED_KEY, [])
        if isinstance(value, str):
            value = [value]
        return [v for v in (value or []) if v]

    def _restore(self) -> None:
        """The last choice, if its file still has the trusted content."""
        ref = str(self.settings.value(CHOICE_KEY, "") or "")
        if ref:
            try:
                digest = model_code.digest(model_code.parse(ref).path)
            except ModelError:
                digest = None
            if digest in self._trusted():
                self._set(ref, digest)
                return
        self._set(None, None)

    def _set(self, ref: str | None, digest: str | None) -> None:
        self.ref, self.digest = ref, digest
        self.settings.setValue(CHOICE_KEY, ref or "")
        if ref is None:
            self.label.setText("none")
            self.label.setToolTip("")
        else:
            parsed = model_code.parse(ref)
            self.label.setText(f"{parsed.path.name}:{parsed.name}")
            self.label.setToolTip(f"{parsed.path}\nSHA-256 {digest}")
        self.clear_button.setEnabled(ref is not None)

    # -- choosing ---------------------------------------------------------------
    @Slot()
    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model code", "",
                                              "Python (*.py);;All files (*)")
        if path:
            self.choose_file(path)

    def choose_file(self, path: str) -> None:
        """Offer the file's names, ask before trusting it, then use it."""
        try:
            names = model_code.names_in(path)
            digest = model_code.digest(path)
        except ModelError as exc:
            self.problem.emit(str(exc))
            return
        if not names:
            self.problem.emit(f"{path}: defines no class or function to build a "
                              f"network with")
            return
        name, ok = QInputDialog.getItem(
            self, "Model code", f"What in {Path(path).name} builds the network?",
            names, 0, False)
        if not ok or not name:
            return
        if digest not in self._trusted() and not self._ask(path, digest):
            return
        self.settings.setValue(TRUSTED_KEY, [*self._trusted(), digest])
        self._set(f"{Path(path).resolve()}:{name}", digest)
        self.changed.emit()

    def _ask(self, path: str, digest: str) -> bool:
        answer = QMessageBox.question(
            self, "Run this code?",
            f"Building the network runs the Python code in\n{path}\n\nwith your "
            f"permissions: it can do anything a program can. Continue only with "
            f"code you trust.\n\nSHA-256 {digest[:16]}…\nYou are asked again if "
            f"the file changes.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def clear(self) -> None:
        if self.ref is None:
            return
        self._set(None, None)
        self.changed.emit()
