"""Legends sit above the data, never over it: in the live plots fed with data
that fills the whole view, with long entry names, and in every plot of the
window (all of them use the shared ``OutsideLegend``)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtWidgets import QStackedWidget, QTabWidget

from explorer.gui.panels.attack_lab.live_curves import LiveCurves
from explorer.gui.widgets.plots import OutsideLegend
from explorer.gui.widgets.training_curves import TrainingCurves


def _overlap(a, b) -> float:
    """Area two scene rectangles share (touching edges share none)."""
    both = a.intersected(b)
    return max(0.0, both.width()) * max(0.0, both.height())


def _points_under(legend: pg.LegendItem, plot: pg.PlotItem) -> list:
    """Every drawn point of the plot's curves whose scene position falls
    inside the legend's box."""
    box = legend.sceneBoundingRect()
    under = []
    for curve in plot.listDataItems():
        x, y = curve.getData()
        if x is None:
            continue
        for px, py in zip(x, y, strict=True):
            if np.isfinite(px) and np.isfinite(py):
                where = plot.vb.mapViewToScene(pg.Point(float(px), float(py)))
                if box.contains(where):
                    under.append((curve.name(), px, py))
    return under


def _clear_of_data(legend: pg.LegendItem, plot: pg.PlotItem) -> bool:
    """Outside the view box, inside the plot's width, over no point."""
    box, data = legend.sceneBoundingRect(), plot.vb.sceneBoundingRect()
    whole = plot.sceneBoundingRect()
    return (legend.items != [] and _overlap(box, data) < 0.5
            and whole.left() - 0.5 <= box.left() and box.right() <= whole.right() + 0.5
            and not _points_under(legend, plot))


@pytest.fixture
def curves(qtbot):
    """The Training page's curves at the size they get in a 1280×800 window."""
    widget = TrainingCurves()
    qtbot.addWidget(widget)
    widget.resize(750, 480)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _feed_a_run_that_reaches_100(curves: TrainingCurves) -> None:
    curves.reset(6)
    rising = np.linspace(0.3, 1.0, 6)
    for epoch, value in enumerate(rising, 1):
        for key, lag in (("train_acc", 0.0), ("val_clean_acc", 0.0),
                         ("test_clean_acc", 0.01), ("val_robust_acc", 0.02),
                         ("test_robust_acc", 0.03), ("val_union_acc", 0.0),
                         ("test_union_acc", 0.0)):
            curves.add_epoch(key, epoch, value - lag)
        curves.add_epoch("train_loss", epoch, 2.0 / epoch)
        curves.add_epoch("lr", epoch, 0.01)
    for step in range(60):
        curves.add_batch(step, 2.5 - step / 30)
    curves.set_steps_per_epoch(10)
    curves.redraw()


def test_training_legends_stay_off_accuracy_that_climbs_to_100(qtbot, curves):
    _feed_a_run_that_reaches_100(curves)
    acc = curves.acc_plot
    _, top = curves.acc_curves["train_acc"].getData()
    assert top.max() == pytest.approx(100)  # the curve runs along the top
    assert curves.best_marker.getData()[1][0] == pytest.approx(98)
    for plot in (curves.loss_plot, acc, curves.method_plot):
        assert isinstance(plot.legend, OutsideLegend)
        qtbot.waitUntil(lambda p=plot: _clear_of_data(p.legend, p), timeout=3000)
    shown = [label.text for _, label in acc.legend.items]
    assert shown == ["train", "val clean", "val robust", "best (on validation)",
                     "test clean", "test robust"]
    # three columns, two rows: the test figures and the star under the others
    assert acc.legend.columnCount == 3
    assert acc.legend.rowCount == 2


def test_a_narrower_training_page_wraps_the_legend_into_more_rows(qtbot, curves):
    _feed_a_run_that_reaches_100(curves)
    legend = curves.acc_plot.legend
    qtbot.waitUntil(lambda: legend.rowCount == 2, timeout=3000)
    wide_box = curves.acc_plot.vb.sceneBoundingRect().height()
    curves.resize(520, 480)
    qtbot.waitUntil(lambda: legend.rowCount > 2, timeout=3000)
    qtbot.waitUntil(lambda: _clear_of_data(legend, curves.acc_plot), timeout=3000)
    # the rows it gained come out of the data area, not out of the legend
    assert curves.acc_plot.vb.sceneBoundingRect().height() < wide_box


def test_attack_confidence_legend_makes_room_for_the_target_entry(qtbot):
    widget = LiveCurves()
    qtbot.addWidget(widget)
    widget.resize(700, 260)
    widget.show()
    qtbot.waitExposed(widget)
    plot, legend = widget.conf_plot, widget.legend
    steps = np.arange(21, dtype=float)
    start = np.linspace(1.0, 0.9, 8)  # every image starts confident: 100 %
    true_conf = np.outer(np.linspace(1.0, 0.0, 21), start)
    target = 1.0 - true_conf  # and ends certain of the target class
    loss = np.outer(steps, np.ones(8))
    widget.set_series(steps, loss, true_conf, target, focus=0)
    qtbot.waitUntil(lambda: len(legend.items) == 3 and _clear_of_data(legend, plot),
                    timeout=3000)
    with_target = legend.sceneBoundingRect().height()
    assert plot.vb.mapViewToScene(pg.Point(0, 100)).y() > \
        legend.sceneBoundingRect().bottom()
    widget.set_series(steps, loss, true_conf, None, focus=0)
    qtbot.waitUntil(lambda: len(legend.items) == 2, timeout=3000)
    qtbot.waitUntil(lambda: _clear_of_data(legend, plot), timeout=3000)
    assert legend.sceneBoundingRect().height() <= with_target


def test_long_entry_names_are_cut_and_the_legend_fits_the_plot(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    plot = widget.getPlotItem()
    plot.setTitle("Accuracy vs eps")
    legend = OutsideLegend(plot)
    long_name = "resnet18-cifar10-pgd-at-eps8-trained-for-two-hundred-epochs"
    names = ["standard", long_name, "trades", "mart"]
    for i, name in enumerate(names):
        plot.plot([0, 1, 2], [100, 60 - i, 10 + i], pen=pg.mkPen(i, width=2),
                  name=name)
    widget.resize(320, 280)
    widget.show()
    qtbot.waitExposed(widget)
    label = legend.items[1][1]
    assert label.text.endswith("…")
    assert len(label.text) == legend.max_chars
    assert label.toolTip() == long_name
    qtbot.waitUntil(lambda: _clear_of_data(legend, plot), timeout=3000)
    narrow_rows = legend.rowCount
    widget.resize(1100, 280)
    qtbot.waitUntil(lambda: legend.rowCount < narrow_rows, timeout=3000)
    qtbot.waitUntil(lambda: _clear_of_data(legend, plot), timeout=3000)
    # a removed entry leaves no hole: the others close up
    plot.removeItem(plot.listDataItems()[1])
    assert [lab.text for _, lab in legend.items] == ["standard", "trades", "mart"]
    assert legend.layout.itemAt(0, 3) is not None  # "trades" moved up beside it


def _reveal(widget) -> None:
    """Bring every tab and page that holds the widget to the front."""
    child, parent = widget, widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QStackedWidget):
            tabs = parent.parentWidget()
            if isinstance(tabs, QTabWidget):
                tabs.setCurrentWidget(child)
            else:
                parent.setCurrentWidget(child)
        child, parent = parent, parent.parentWidget()


def test_no_legend_in_the_window_covers_a_plot(qtbot, loaded_window):
    window = loaded_window()
    window.resize(1280, 800)
    checked: dict[str, int] = {}
    for view in window.findChildren(pg.GraphicsView):
        _reveal(view)
        if not view.isVisible():
            continue  # hidden until its page has a result to show
        scene = view.scene()
        legends = [i for i in scene.items() if isinstance(i, pg.LegendItem)]
        boxes = [i for i in scene.items() if isinstance(i, pg.ViewBox)
                 and i.isVisible()]
        for legend in legends:
            where = type(view).__qualname__
            assert isinstance(legend, OutsideLegend), where
            if legend.plot is not None and legend.items:
                qtbot.waitUntil(lambda lg=legend: _clear_of_data(lg, lg.plot),
                                timeout=3000)
            for box in boxes:
                assert _overlap(legend.sceneBoundingRect(),
                                box.sceneBoundingRect()) < 0.5, where
            checked[where] = checked.get(where, 0) + 1
    # every page's plots with a legend were looked at (17 legends when written:
    # the Training, Attack Lab and Denoiser curves are GraphicsLayoutWidgets)
    assert {"GraphicsLayoutWidget", "EpsCurves", "AccuracyCurves", "ChannelView",
            "FeatureView", "SliceView", "RhoCurve", "RadiusPlot", "RocPlot",
            "NullHistogram"} <= set(checked), checked
    assert sum(checked.values()) >= 17, checked
    assert window.panels["training"].curves.acc_plot.legend.items
    assert window.panels["attack"].findChild(LiveCurves).legend.items
