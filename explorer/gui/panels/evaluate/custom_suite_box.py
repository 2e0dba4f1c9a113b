"""The custom suite's choices: which attacks (checkable list) at which budgets.

Only attacks that take an eps budget are listed. Budgets are typed as
"0.05, 0.1, 8/255"; a bad entry is shown in red under the field as it is
typed, and :meth:`CustomSuiteBox.chosen` raises a ParamError naming it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.core import attacks as registry
from explorer.core.analysis.custom_suite import custom_plan, eps_attacks, parse_budgets
from explorer.core.params import ParamError

DEFAULT_ATTACKS = ("fgsm", "pgd")
DEFAULT_BUDGETS = "0.05, 0.1"
HINT_STYLE = "color: #444; font-size: 11px;"
ERROR_STYLE = "color: #b00020; font-size: 11px;"


def _summary(name: str) -> str:
    doc = (registry.attack_class(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else name


class CustomSuiteBox(QWidget):
    """Attack checklist and budgets field of the custom suite."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setToolTip("each checked attack runs at every budget; a point "
                             "is robust at a budget only if it survives them all")
        for name in eps_attacks():
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setToolTip(_summary(name))
            self.list.addItem(item)
        self.list.setMaximumHeight(118)
        self.budgets = QLineEdit()
        self.budgets.setPlaceholderText("0.05, 0.1, 8/255")
        self.budgets.setToolTip("l-inf budgets in pixel units, separated by commas;"
                                " k/255 is accepted")
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addWidget(QLabel("Attacks"))
        layout.addWidget(self.list)
        layout.addWidget(QLabel("Budgets (eps)"))
        layout.addWidget(self.budgets)
        layout.addWidget(self.hint)
        self.budgets.textChanged.connect(self._on_budgets)
        self.set_values({"attacks": list(DEFAULT_ATTACKS), "budgets": DEFAULT_BUDGETS})

    def checked(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked(self, names: list[str]) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names
                               else Qt.CheckState.Unchecked)

    def values(self) -> dict[str, Any]:
        return {"attacks": self.checked(), "budgets": self.budgets.text()}

    def set_values(self, values: dict[str, Any]) -> None:
        if "attacks" in values:
            self.set_checked(list(values["attacks"]))
        if "budgets" in values:
            budgets = values["budgets"]
            self.budgets.setText(budgets if isinstance(budgets, str)
                                 else ", ".join(f"{b:g}" for b in budgets))

    def chosen(self) -> dict[str, Any]:
        """``{"attacks": [...], "budgets": [...]}`` ready for the job, budgets
        ascending; raises ParamError (naming the bad value) otherwise."""
        if not self.checked():
            raise ParamError("custom suite: check at least one attack")
        plan = custom_plan(self.checked(), parse_budgets(self.budgets.text()))
        return {"attacks": self.checked(), "budgets": sorted({s.eps for s in plan})}

    @Slot(str)
    def _on_budgets(self, text: str) -> None:
        try:
            budgets = parse_budgets(text)
            custom_plan(["fgsm"], budgets)  # the same range check as the job's
        except ParamError as exc:
            self.hint.setText(str(exc))
            self.hint.setStyleSheet(ERROR_STYLE)
            return
        self.hint.setText(f"{len(set(budgets))} budget(s): one column each")
        self.hint.setStyleSheet(HINT_STYLE)
