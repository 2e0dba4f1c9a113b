"""The Training page's method plot: figures a method reports of its own
(``Defense.extra_scores``) become curves, and a method that selects on one
gets the best-epoch star there."""

from __future__ import annotations

import pytest

from explorer.gui.widgets.training_curves import TrainingCurves


@pytest.fixture
def curves(qtbot):
    widget = TrainingCurves()
    qtbot.addWidget(widget)
    return widget


def _legend(plot) -> list[str]:
    return [label.text for _, label in plot.legend.items]


def test_a_method_without_figures_of_its_own_says_so(curves):
    curves.reset(3)
    for name, value in (("val_robust_acc", 0.4), ("test_robust_acc", 0.3),
                        ("train_loss", 1.0), ("epoch_seconds", 2.0)):
        curves.add_epoch(name, 1, value)
    curves.redraw()
    assert curves.method_curves == {}
    assert curves.method_note.isVisible()
    star_x, _ = curves.best_marker.getData()
    assert list(star_x) == [1]  # the usual star, on validation robust accuracy


def test_per_norm_figures_are_drawn_and_the_star_follows_the_selection(curves):
    curves.reset(3, selection="union_acc")
    figures = {"val_linf_acc": [0.5, 0.6, 0.4], "val_union_acc": [0.2, 0.35, 0.3],
               "test_union_acc": [0.25, 0.3, 0.32], "val_robust_acc": [0.6, 0.5, 0.7]}
    for name, values in figures.items():
        for epoch, value in enumerate(values, 1):
            curves.add_epoch(name, epoch, value)
    curves.redraw()
    assert set(curves.method_curves) == {"val_linf_acc", "val_union_acc",
                                         "test_union_acc"}
    assert not curves.method_note.isVisible()
    assert {"val union", "test union", "val linf"} <= set(_legend(curves.method_plot))
    x, y = curves.method_curves["test_union_acc"].getData()
    assert list(x) == [1, 2, 3]
    assert list(y) == pytest.approx([25, 30, 32])
    # chosen on validation union accuracy (epoch 2), not on l-inf PGD (epoch 3)
    assert curves.best_epoch() == 2
    star_x, star_y = curves.method_best.getData()
    assert (list(star_x), list(star_y)) == ([2], [pytest.approx(35)])
    assert curves.best_marker.getData()[0] is None  # not in the accuracy plot
    # a new run starts empty again
    curves.reset(2)
    curves.redraw()
    assert curves.method_curves == {}
    assert curves.method_note.isVisible()
    assert _legend(curves.method_plot) == []
