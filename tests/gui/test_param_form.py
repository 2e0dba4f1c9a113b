"""ParamForm: built from specs, round-trips values, shows k/255 for budgets."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QSpinBox,
)

from explorer.core.params import Param, validate
from explorer.gui.widgets.param_form import ParamForm

PARAMS = (
    Param("eps", float, 8 / 255, "budget", minimum=0.0, maximum=1.0, unit="px"),
    Param("steps", int, 10, "iterations", minimum=1, maximum=1000),
    Param("norm", str, "linf", "threat model", choices=("linf", "l2", "l1")),
    Param("random_start", bool, True, "start inside the ball"),
    Param("tag", str, "run", "free text"),
)


@pytest.fixture
def form(qtbot):
    w = ParamForm(PARAMS)
    qtbot.addWidget(w)
    return w


def test_widgets_match_types(form):
    assert isinstance(form.editor("eps"), QDoubleSpinBox)
    assert isinstance(form.editor("steps"), QSpinBox)
    assert isinstance(form.editor("norm"), QComboBox)
    assert isinstance(form.editor("random_start"), QCheckBox)
    assert isinstance(form.editor("tag"), QLineEdit)


def test_round_trip_equals_defaults(form):
    assert form.values() == pytest.approx(validate(PARAMS, {}))


def test_user_edits_reach_values_and_signal(qtbot, form):
    with qtbot.waitSignal(form.values_changed) as blocker:
        form.editor("steps").setValue(40)
    assert blocker.args[0]["steps"] == 40
    form.editor("norm").setCurrentIndex(1)
    form.editor("random_start").click()
    values = form.values()
    assert values["norm"] == "l2"
    assert values["random_start"] is False


def test_pixel_budget_shows_k_over_255(form):
    form.editor("eps").setValue(16 / 255)
    labels = [w.text() for w in form.findChildren(QLabel)]
    assert any("16.0/255" in t for t in labels)


def test_range_is_enforced_by_the_editor(form):
    form.editor("eps").setValue(5.0)
    form.editor("steps").setValue(0)
    assert form.values()["eps"] == 1.0
    assert form.values()["steps"] == 1


def test_set_values_skips_stale_entries(form):
    form.set_values({"steps": 20, "norm": "l9", "eps": -3, "unknown": 1})
    values = form.values()
    assert values["steps"] == 20
    assert values["norm"] == "linf"
    assert values["eps"] == pytest.approx(8 / 255)
