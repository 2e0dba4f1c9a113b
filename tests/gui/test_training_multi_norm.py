"""The Training page with a multi-norm method: l-inf, l2, l1 and union
accuracy curves in the Method figures plot, the best-epoch star on
validation union accuracy, and the page saying what chose the best epoch."""

from __future__ import annotations

TINY = {"epochs": 2, "batch_size": 64, "eval_n": 16, "eval_steps": 1}
NORMS = ("linf", "l2", "l1", "union")


def _legend(plot) -> list[str]:
    return [label.text for _, label in plot.legend.items]


def test_an_msd_run_shows_per_norm_and_union_curves(qtbot, ctx, training_page):
    page = training_page
    page.form.choose("small-cnn", {"width": 4, "dense": 16}, "msd", {"steps": 1},
                     TINY)
    page.start_training(limit_train=128)
    handle = page.handle
    with qtbot.waitSignal(handle.finished, timeout=90_000):
        pass
    assert handle.state == "done"
    curves = page.curves
    qtbot.waitUntil(lambda: curves.points("val_union_acc") == 2, timeout=5000)
    qtbot.waitUntil(lambda: "val union" in _legend(curves.method_plot), timeout=5000)
    expected = {f"{part}_{norm}_acc" for part in ("val", "test") for norm in NORMS}
    assert set(curves.method_curves) == expected
    assert {"val linf", "val l2", "val l1", "test union"} <= set(
        _legend(curves.method_plot))
    assert not curves.method_note.isVisible()
    x, _ = curves.method_curves["test_union_acc"].getData()
    assert list(x) == [1, 2]
    summary = ctx.workspace.get(page.run_id).summary
    assert summary["selected_metric"] == "val_union_acc"
    # The star sits on the validation union curve, at the run's best epoch.
    star_x, star_y = curves.method_best.getData()
    assert list(star_x) == [summary["best_epoch"]]
    union = dict(zip(*curves.method_curves["val_union_acc"].getData(), strict=True))
    assert star_y[0] == union[summary["best_epoch"]] == max(union.values())
    assert curves.best_marker.getData()[0] is None  # not on l-inf robust
    # What chose it, in the status line, the plan note and the run list.
    assert (f"best epoch {summary['best_epoch']}, chosen on validation union "
            "accuracy") in page.status.text()
    assert "val union" in page.status.text()
    assert "validation union accuracy in Method figures" in page.split_note.text()
    page.tabs.setCurrentIndex(1)
    row = page.runs.ids().index(page.run_id)
    cell = page.runs.table.item(row, page.runs.table.columnCount() - 1).text()
    assert cell == f"{summary['best_epoch']} (on validation union)"
