"""A click on an accuracy-vs-eps curve opens the gallery of the images that
break at that eps: in the Attack Lab and in the Evaluate page."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt

from explorer.core import models
from explorer.gui.panels.attack_lab.panel import AttackLabPanel
from explorer.gui.panels.evaluate.panel import EvaluatePanel
from explorer.gui.widgets import eps_gallery
from explorer.gui.widgets.eps_gallery import EpsGallery, GallerySource

SEARCH = {"search_steps": 4, "pgd_steps": 8, "deepfool_steps": 20}
TIMEOUT = 60_000



@pytest.fixture(scope="module")
def cnn():
    return models.load_builtin("fmnist-cnn-standard")


def _check_shown(gallery: EpsGallery, model, dataset, eps: float) -> None:
    """The gallery shows exactly the clean-correct images whose minimal eps is
    at most ``eps``, smallest first, each adversarial image within eps and
    fooling ``model``."""
    r = gallery.result
    assert gallery.eps == pytest.approx(eps)
    x, y = dataset.as_tensors(0, len(r["y"]))
    np.testing.assert_array_equal(r["x"], x.numpy())  # the curve's own images
    with torch.no_grad():
        clean = model(x).argmax(1).numpy()
    correct = clean == y.numpy()
    want = [i for i in np.argsort(r["min_eps"], kind="stable")
            if correct[i] and r["min_eps"][i] <= eps]
    assert gallery.shown == want
    assert len(gallery.grid.captions) == len(want)
    if not want:
        return
    shown = np.array(want)
    assert (np.diff(r["min_eps"][shown]) >= 0).all()
    x_adv = torch.from_numpy(r["x_adv"][shown])
    size = (x_adv - x[shown]).abs().flatten(1).amax(1).numpy()
    assert (size <= eps + 1e-6).all()
    np.testing.assert_allclose(size, r["min_eps"][shown], atol=1e-6)
    with torch.no_grad():
        adv = model(x_adv).argmax(1).numpy()
    assert (adv != y.numpy()[shown]).all()
    classes, first = dataset.classes, shown[0]
    assert gallery.grid.captions[0] == (f"{r['min_eps'][first]:.3g}: "
                                        f"{classes[int(y[first])]} → "
                                        f"{classes[int(adv[0])]}")


# -- the Attack Lab ---------------------------------------------------------------
@pytest.fixture
def lab(qtbot, ctx, fmnist, cnn, one_thread):
    p = AttackLabPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 740)
    p.show()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(cnn, "fmnist-cnn-standard")
    p.attack_form.choose("pgd", {"steps": 3, "alpha": 0.02, "norm": "linf",
                                 "targeted": "none", "restarts": 1})
    p.sweep.gallery.search_params = dict(SEARCH)
    p.tabs.setCurrentWidget(p.sweep)
    return p


def _sweep(qtbot, lab, eps_text: str, n: int) -> None:
    lab.sweep.eps_edit.setText(eps_text)
    lab.sweep.n.setValue(n)
    lab.sweep.run_button.click()
    with qtbot.waitSignal(lab.sweep.job.finished, timeout=TIMEOUT):
        pass


def _click_plot(qtbot, plot, x: float, y: float) -> None:
    """A real left click on the plot at data point (x, y)."""
    vb = plot.getPlotItem().getViewBox()
    where = plot.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=where)


def test_attack_lab_click_opens_the_images_that_break_there(qtbot, lab, ctx,
                                                             fmnist, cnn):
    sweep = lab.sweep
    sweep.open_gallery(0.05)
    assert "Run a sweep first" in sweep.status.text()
    assert not sweep.gallery.isVisible()
    _sweep(qtbot, lab, "0, 4/255, 0.1", 12)
    assert "Click a point" in sweep.status.text()
    gallery = sweep.gallery
    # The slot a click calls, with a data point: the search runs as a job.
    with qtbot.waitSignal(gallery.filled, timeout=TIMEOUT):
        sweep.open_gallery(4 / 255)
        assert gallery.isVisible()
        assert gallery.searching
        assert "Searching the minimal eps of 12 images" in gallery.header.text()
    _check_shown(gallery, cnn, fmnist, 4 / 255)
    assert "fmnist-cnn-standard" in gallery.header.text()
    assert "already misclassified" in gallery.explain.text()
    # A real click near the 0.1 point: the nearest swept eps, filled at once
    # from the cache (no second search).
    with qtbot.waitSignal(gallery.filled, timeout=1000):
        _click_plot(qtbot, sweep.plot, 0.09, 50.0)
    assert not gallery.searching
    assert not ctx.runner.active()
    _check_shown(gallery, cnn, fmnist, 0.1)
    assert len(gallery.shown) > 0
    assert "break at eps 0.1 = 25.5/255 (l-inf)" in gallery.header.text()
    # Nearest to 0: no image that is right on clean breaks without a budget.
    with qtbot.waitSignal(gallery.filled, timeout=1000):
        _click_plot(qtbot, sweep.plot, 0.004, 20.0)
    assert gallery.eps == 0.0
    assert gallery.shown == []
    assert "No image breaks at eps 0 (l-inf)" in gallery.header.text()
    # A click outside the plot area (left of it, on the axis) opens nothing.
    area = sweep.plot.getPlotItem().getViewBox().sceneBoundingRect()
    where = sweep.plot.mapFromScene(QPointF(area.left() - 15, area.center().y()))
    gallery.eps = None
    qtbot.mouseClick(sweep.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert gallery.eps is None


def test_attack_lab_l1_sweep_says_there_is_no_gallery(qtbot, lab):
    lab.attack_form.choose("pgd", {"steps": 1, "alpha": 0.5, "norm": "l1",
                                   "targeted": "none", "restarts": 1, "eps": 5.0})
    _sweep(qtbot, lab, "0, 5", 8)
    lab.sweep.open_gallery(5.0)
    gallery = lab.sweep.gallery
    assert "the minimal eps is searched in l-inf or l2, and this sweep's norm " \
           "is l1" in gallery.header.text()
    assert not gallery.searching
    assert gallery.shown == []


# -- the widget alone -------------------------------------------------------------
@pytest.fixture
def gallery(qtbot, ctx, one_thread):
    g = EpsGallery(ctx.runner, "test/min-eps")
    qtbot.addWidget(g)
    g.search_params = dict(SEARCH)
    return g


def _source(dataset, model, n=8, **kw) -> GallerySource:
    return GallerySource(model, dataset, n, kw.pop("norm", "linf"), "the cnn",
                         key=("test", n), classes=tuple(dataset.classes), **kw)


def test_many_images_are_capped_with_a_note(qtbot, gallery, fmnist, cnn,
                                            monkeypatch):
    monkeypatch.setattr(eps_gallery, "MAX_SHOWN", 3)
    with qtbot.waitSignal(gallery.filled, timeout=TIMEOUT):
        gallery.show_budget(_source(fmnist, cnn), 1.0)
    b = gallery.breaking
    assert b.count > 3
    assert len(gallery.shown) == 3
    assert len(gallery.grid.captions) == 3
    assert (f"{b.count} of the {b.n_correct} images classified correctly break"
            in gallery.header.text())
    assert "the 3 with the smallest minimal eps are shown" in gallery.header.text()


def test_a_failed_search_and_a_cancel_are_said(qtbot, gallery, fmnist, cnn):
    def broken_loader():
        raise OSError("weights file is damaged")

    with qtbot.waitSignal(gallery.controls.finished, timeout=TIMEOUT):
        gallery.show_budget(_source(fmnist, broken_loader), 0.1)
    assert "The minimal-eps search failed: weights file is damaged" in \
        gallery.header.text()
    assert gallery.shown == []
    with qtbot.waitSignal(gallery.controls.finished, timeout=TIMEOUT):
        gallery.show_budget(_source(fmnist, cnn, n=500), 0.1)
        gallery.controls.cancel_button.click()
    assert "Search cancelled" in gallery.header.text()
    assert gallery.result is None


# -- the Evaluate page ---------------------------------------------------------
TWO = ["fmnist-cnn-standard", "fmnist-cnn-pgdat"]


@pytest.fixture
def evaluate(qtbot, ctx, fmnist, one_thread):
    p = EvaluatePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1130, 760)
    p.show()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    p.settings_box.set_values({"suite": "quick", "eps": 0.1, "n": 12,
                               "sweep": True, "checks": False})
    p.options = {"sweep_eps": [0.05, 0.1], "sweep_steps": 2, "examples": 0,
                 "suite_options": {"steps": 3}}
    p.gallery.search_params = dict(SEARCH)
    for i, choice in enumerate(p.models.choices()):
        p.models.list.item(i).setCheckState(
            Qt.CheckState.Checked if choice.name in TWO else Qt.CheckState.Unchecked)
    with qtbot.waitSignal(p.evaluation_done, timeout=TIMEOUT):
        p.run_button.click()
    yield p
    if p.running:
        with qtbot.waitSignal(p.handle.finished, timeout=20000):
            p.cancel()


def test_evaluate_click_on_a_models_curve_opens_its_gallery(qtbot, evaluate,
                                                            fmnist):
    curves, gallery = evaluate.curves, evaluate.gallery
    assert curves.drawn() == 2
    # The slot the click calls: the second model's curve at 0.1.
    with qtbot.waitSignal(gallery.filled, timeout=TIMEOUT):
        evaluate.open_gallery(1, 0.1)
    assert gallery.source.name == "fmnist-cnn-pgdat"
    assert "fmnist-cnn-pgdat, first 12 images" in gallery.header.text()
    _check_shown(gallery, models.load_builtin("fmnist-cnn-pgdat"), fmnist, 0.1)
    # From a scene position to the nearest point: its model and its eps.
    vb = curves.getPlotItem().getViewBox()
    xs, ys = curves.curves[0].getData()
    k = list(xs).index(0.05)
    at = vb.mapViewToScene(QPointF(0.05, ys[k]))
    assert curves.nearest(at + QPointF(3, -2)) == (0, 0.05)
    # A real click there: the first model's gallery (a search of its own).
    with qtbot.waitSignal(curves.point_clicked, timeout=1000) as clicked:
        qtbot.mouseClick(curves.viewport(), Qt.MouseButton.LeftButton,
                         pos=curves.mapFromScene(at))
    assert clicked.args == [0, 0.05]
    qtbot.waitUntil(lambda: gallery.result is not None
                    and gallery.source.name == "fmnist-cnn-standard", timeout=TIMEOUT)
    _check_shown(gallery, models.load_builtin("fmnist-cnn-standard"), fmnist, 0.05)
    # The eps-0 point of the robust model: cached, instant, and empty.
    with qtbot.waitSignal(gallery.filled, timeout=1000):
        evaluate.open_gallery(1, 0.0)
    assert gallery.shown == []
    assert "No image breaks at eps 0 (l-inf)" in gallery.header.text()
    assert "— fmnist-cnn-pgdat" in gallery.header.text()
