"""Inference wrapper chooser: put the session's model inside an inference-time
defense (Mixup Inference, bit-depth reduction), so every panel uses the
wrapped model.

The box remembers the unwrapped model: choosing "none" gives it back, and a
newly loaded model is wrapped again with the current choice. Wrapping runs as
a job (Mixup Inference loads its mixup set, the data set's train split).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QGroupBox, QLabel, QVBoxLayout

from explorer.core.defenses import inference_wrappers, wrapper_spec
from explorer.core.defenses.inference_wrap import (
    wrap_model_job,
    wrapper_label,
    wrapper_note,
    wrapper_title,
)
from explorer.core.params import ParamError
from explorer.gui.context import AppContext
from explorer.gui.widgets.param_form import ParamForm

# The data set to draw the mixup set from: (name, split, root, data params).
DataSource = Callable[[], tuple[str, str, str | None, dict[str, Any]]]


def describe_wrapper(wrapper: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in wrapper["params"].items())
    return f"wrapped in {wrapper_title(wrapper['name'])} ({params})"


class WrapperBox(QGroupBox):
    wrapped = Signal(object)  # the wrapper dict, or None when unwrapped

    def __init__(self, ctx: AppContext, data_source: DataSource,
                 parent=None) -> None:
        super().__init__("Inference wrapper", parent)
        self.ctx, self._data_source = ctx, data_source
        self._base: Any = None  # the unwrapped model and its source
        self._base_source = ""
        self._job = None
        self.combo = QComboBox()
        self.combo.addItem("none", None)
        for name in inference_wrappers():
            self.combo.addItem(wrapper_title(name), name)
        self.combo.setToolTip("Wrap the model in an inference-time defense; all "
                              "panels then use the wrapped model")
        self.form = ParamForm()
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.combo)
        layout.addWidget(self.form)
        layout.addWidget(self.status)
        self._show("", "")
        self.combo.currentIndexChanged.connect(self.on_choice)
        self.form.values_changed.connect(self.apply)
        ctx.session.model_changed.connect(self.on_model_changed)

    def current(self) -> str | None:
        return self.combo.currentData()

    @Slot()
    def on_choice(self) -> None:
        name = self.current()
        self.form.blockSignals(True)
        self.form.set_params(wrapper_spec(name) if name else ())
        self.form.blockSignals(False)
        self.apply()

    @Slot()
    def on_model_changed(self) -> None:
        model = self.ctx.session.model
        if model is not None and getattr(model, "wrapper", None) is not None:
            return  # our own wrapped model arriving
        self._base, self._base_source = model, self.ctx.session.model_source
        if self.current() is not None and model is not None:
            self.apply()

    @Slot()
    def apply(self) -> None:
        """Wrap the unwrapped model as chosen (or unwrap for "none")."""
        name, session = self.current(), self.ctx.session
        if self._job is not None and self._job.running:
            self._job.detach()  # a late wrap must not replace this choice
            self._job.cancel()
        self._job = None
        if name is None:
            self._show("", "")
            if session.model is not None and session.model is not self._base:
                session.set_model(self._base, self._base_source)
                self.wrapped.emit(None)
            return
        if self._base is None:
            self._show("Choose a model to wrap.", "color: #b00020;")
            return
        data_name, split, root, data_params = self._data_source()
        try:
            params = self.form.values()
        except ParamError as exc:
            self._show(str(exc), "color: #b00020;")
            return
        self._show(f"wrapping in {wrapper_title(name)}…", "")
        job = self.ctx.runner.start(
            wrap_model_job, name=f"wrap in {name}", slot="data-model/wrap",
            job_args=(self._base, name, params), data_name=data_name, split=split,
            root=root, data_params=data_params)
        job.done.connect(self._on_wrapped)
        job.failed.connect(self._on_failed)
        self._job = job

    @Slot(dict)
    def _on_wrapped(self, result: dict) -> None:
        self._job = None
        wrapper = result["wrapper"]
        mixing = f", mixing with {wrapper['mix_set']}" if "mix_set" in wrapper else ""
        self._show(f"{describe_wrapper(wrapper)}{mixing}."
                   f"\nAn {wrapper_note(wrapper['name'])}.", "color: #8a5a00;")
        self.ctx.session.set_model(
            result["model"], f"{self._base_source} + {wrapper_label(wrapper)}")
        self.wrapped.emit(wrapper)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._job = None
        self._show(f"cannot wrap: {message}", "color: #b00020;")

    def _show(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)
        self.status.setVisible(bool(text))
