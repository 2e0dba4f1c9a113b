"""A form built from parameter specs: the one way every panel asks for values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from explorer.core.params import Param, ParamError

_BIG = 1e9


class ParamForm(QWidget):
    """bool → check box, int → spin box, float → double spin box (with k/255
    for pixel budgets), choices → combo box, anything else → line edit."""

    values_changed = Signal(dict)

    def __init__(self, params: Iterable[Param] = (), parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._params: tuple[Param, ...] = ()
        self._editors: dict[str, QWidget] = {}
        self._px_labels: dict[str, QLabel] = {}
        self.set_params(params)

    # -- building -----------------------------------------------------------
    def set_params(self, params: Iterable[Param]) -> None:
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._params = tuple(params)
        self._editors.clear()
        self._px_labels.clear()
        for p in self._params:
            editor = self._make_editor(p)
            editor.setToolTip(f"{p.help}\nallowed: {p.range_text()}")
            editor.setObjectName(f"param_{p.name}")
            self._editors[p.name] = editor
            if p.unit == "px":
                row = QWidget()
                box = QHBoxLayout(row)
                box.setContentsMargins(0, 0, 0, 0)
                label = QLabel()
                self._px_labels[p.name] = label
                box.addWidget(editor, 1)
                box.addWidget(label)
                self._layout.addRow(p.title, row)
                self._update_px(p.name)
            else:
                self._layout.addRow(p.title, editor)
        self.setVisible(bool(self._params))

    def _make_editor(self, p: Param) -> QWidget:
        if p.choices is not None:
            w = QComboBox()
            for choice in p.choices:
                w.addItem(str(choice), choice)
            w.setCurrentIndex(max(0, list(p.choices).index(p.default)))
            w.currentIndexChanged.connect(self._emit)
            return w
        if p.type is bool:
            w = QCheckBox()
            w.setChecked(bool(p.default))
            w.toggled.connect(self._emit)
            return w
        if p.type is int:
            w = QSpinBox()
            w.setRange(int(_bound(p.minimum, -_BIG)), int(_bound(p.maximum, _BIG)))
            w.setValue(int(p.default))
            w.valueChanged.connect(self._emit)
            return w
        if p.type is float:
            w = QDoubleSpinBox()
            w.setDecimals(6 if p.unit == "px" else 4)
            w.setRange(_bound(p.minimum, -_BIG), _bound(p.maximum, _BIG))
            w.setSingleStep(1 / 255 if p.unit == "px" else _step(p))
            w.setValue(float(p.default))
            w.valueChanged.connect(self._emit)
            return w
        w = QLineEdit(str(p.default))
        w.editingFinished.connect(self._emit)
        return w

    # -- values -------------------------------------------------------------
    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self._params:
            w = self._editors[p.name]
            if isinstance(w, QComboBox):
                out[p.name] = w.currentData()
            elif isinstance(w, QCheckBox):
                out[p.name] = w.isChecked()
            elif isinstance(w, QDoubleSpinBox) and p.unit == "px":
                out[p.name] = _snap_255(w.value())
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                out[p.name] = w.value()
            else:
                out[p.name] = p.validate(w.text()) if p.type is not str else w.text()
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Set known values (e.g. last choices); bad or stale ones are skipped."""
        for p in self._params:
            if p.name not in values:
                continue
            try:
                value = p.validate(values[p.name])
            except ParamError:
                continue
            w = self._editors[p.name]
            if isinstance(w, QComboBox):
                w.setCurrentIndex(max(0, w.findData(value)))
            elif isinstance(w, QCheckBox):
                w.setChecked(value)
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                w.setValue(value)
            elif isinstance(w, QLineEdit):
                w.setText(str(value))

    @Slot()
    def _emit(self) -> None:
        for name in self._px_labels:
            self._update_px(name)
        try:
            self.values_changed.emit(self.values())
        except ParamError:
            pass

    def _update_px(self, name: str) -> None:
        w = self._editors[name]
        if isinstance(w, QDoubleSpinBox):
            self._px_labels[name].setText(f"= {w.value() * 255:.1f}/255")


def _snap_255(value: float) -> float:
    """Pixel budgets are usually k/255: undo the spin box's decimal rounding."""
    k = round(value * 255)
    return k / 255 if abs(value * 255 - k) < 1e-3 else value


def _bound(value: float | None, fallback: float) -> float:
    return fallback if value is None else float(value)


def _step(p: Param) -> float:
    if p.minimum is not None and p.maximum is not None:
        return max((p.maximum - p.minimum) / 100, 1e-4)
    return 0.1
