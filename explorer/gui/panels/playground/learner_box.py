"""One side of the playground: a training method with its budget and an MLP.

Both forms come from the core's parameter specs (the defense's and the
``mlp`` architecture's), adapted to the playground: budgets are in box units
of the unit square (not pixels, so no k/255), ``alpha`` follows ``eps`` (the
playground derives it), and the MLP defaults to a toy-sized width.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QSignalBlocker, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core import defenses, models
from explorer.core.defenses.playground import METHODS, PARAMS, Learner
from explorer.core.params import Param, ParamError
from explorer.gui.widgets.param_form import ParamForm

METHOD_TITLES = {"standard": "Standard", "pgd-at": "PGD-AT", "fast-at": "Fast-AT",
                 "trades": "TRADES"}
# The playground's own eps spec: a ball of radius 0.5 covers the whole box.
BOX_EPS = next(p for p in PARAMS if p.name == "eps")
_MLP_LIMITS = {"hidden": (32, 512), "depth": (2, 6)}  # default, maximum


def method_params(method: str) -> tuple[Param, ...]:
    out = []
    for p in defenses.spec(method):
        if p.name == "alpha":
            continue  # derived from eps by the playground
        if p.unit == "px":
            p = replace(p, unit="", label=f"{p.title} (box units)")
        out.append(p)
    return tuple(out)


def mlp_params() -> tuple[Param, ...]:
    out = []
    for p in models.spec("mlp"):
        if p.name in _MLP_LIMITS:
            default, top = _MLP_LIMITS[p.name]
            p = replace(p, default=default, maximum=top)
        out.append(replace(p, label="width") if p.name == "hidden" else p)
    return tuple(out)


def describe(learner: Learner) -> str:
    """E.g. ``PGD-AT ε=0.05 · MLP 32×2 relu``."""
    text = METHOD_TITLES.get(learner.method, learner.method)
    if "eps" in learner.method_params:
        text += f" ε={learner.method_params['eps']:g}"
    return (f"{text} · MLP {learner.hidden}×{learner.depth} "
            f"{learner.activation}")


class LearnerBox(QGroupBox):
    """Method + its parameters + width/depth/activation; ``changed`` on edits."""

    changed = Signal()

    def __init__(self, title: str, method: str = "standard",
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.name = title
        self.method_combo = QComboBox()
        for m in METHODS:
            self.method_combo.addItem(METHOD_TITLES.get(m, m), m)
        self.method_combo.setCurrentIndex(METHODS.index(method))
        self.method_combo.setToolTip("training objective of this model")
        self.method_form = ParamForm(method_params(method))
        self.mlp_form = ParamForm(mlp_params())
        top = QFormLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addRow("method", self.method_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.method_form)
        layout.addWidget(self.mlp_form)
        _commit_on_enter(self.method_form)
        _commit_on_enter(self.mlp_form)
        self.method_combo.currentIndexChanged.connect(self._on_method)
        self.method_form.values_changed.connect(self._on_values)
        self.mlp_form.values_changed.connect(self._on_values)

    def method(self) -> str:
        return str(self.method_combo.currentData())

    def learner(self) -> Learner:
        """The chosen learner; ParamError names this box and the bad value."""
        values = self.method_form.values()
        try:
            if "eps" in values:
                BOX_EPS.validate(values["eps"])
            mlp = self.mlp_form.values()
        except ParamError as exc:
            raise ParamError(f"{self.name}: {exc}") from None
        return Learner(self.method(), values, hidden=mlp["hidden"],
                       depth=mlp["depth"], activation=mlp["activation"])

    def choose(self, method: str, values: dict[str, Any] | None = None,
               mlp: dict[str, Any] | None = None) -> None:
        """Set everything at once; ``changed`` is emitted once."""
        with QSignalBlocker(self.method_combo):
            self.method_combo.setCurrentIndex(METHODS.index(method))
        self.method_form.set_params(method_params(method))
        _commit_on_enter(self.method_form)
        with QSignalBlocker(self.method_form), QSignalBlocker(self.mlp_form):
            self.method_form.set_values(values or {})
            self.mlp_form.set_values(mlp or {})
        self.changed.emit()

    @Slot(int)
    def _on_method(self, _index: int) -> None:
        self.method_form.set_params(method_params(self.method()))
        _commit_on_enter(self.method_form)
        self.changed.emit()

    @Slot(dict)
    def _on_values(self, _values: dict) -> None:
        self.changed.emit()


def _commit_on_enter(form: ParamForm) -> None:
    """Typing "400" must not rebuild the playground at "4" and "40"."""
    for spin in form.findChildren(QAbstractSpinBox):
        spin.setKeyboardTracking(False)
