"""Look Inside maps show the computed region and nothing else: each view
range is the grid's extent (grown only to hold a mark outside it), at one
scale on both axes when both are distances in the same unit."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import models
from explorer.core.analysis.input_landscape import input_landscape
from explorer.core.analysis.slices import image_slice
from explorer.gui.panels.inside.landscape_view import LandscapeView
from explorer.gui.panels.inside.slice_view import SliceView

TOL = 0.01  # of the shown extent


@pytest.fixture(scope="module")
def cnn():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture(scope="module")
def dress(fmnist):
    x, y = fmnist[0]
    return x, int(y)


def _square(qtbot, plot) -> None:
    box = plot.getViewBox()
    qtbot.waitUntil(lambda: abs(box.size().width() - box.size().height()) <= 1,
                    timeout=5000)


def _extent(coords: np.ndarray) -> tuple[float, float]:
    step = coords[1] - coords[0]
    return coords[0] - step / 2, coords[-1] + step / 2


def _close(got, want, size) -> None:
    np.testing.assert_allclose(got, want, atol=TOL * size)


def _holds(view_range, points) -> bool:
    (x0, x1), (y0, y1) = view_range
    pts = np.asarray(points, float).reshape(-1, 2)
    return bool(np.all((pts[:, 0] >= x0) & (pts[:, 0] <= x1)
                       & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)))


def _same_scale(plot) -> None:
    (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
    size = plot.getViewBox().size()
    per_px = ((x1 - x0) / size.width(), (y1 - y0) / size.height())
    assert per_px[0] == pytest.approx(per_px[1], rel=TOL)


def test_a_computed_slice_fills_each_map_at_one_scale(qtbot, cnn, dress):
    x, y = dress
    result = image_slice([cnn, cnn], x, y, grid=11, eps=0.1)
    view = SliceView()
    qtbot.addWidget(view)
    view.resize(900, 600)  # taller than two maps side by side need
    view.show()
    view.show_result({**result, "meta": {"models": ["a", "b"]}})
    lo, hi = _extent(result["coords"])
    for size in ((900, 600), (1300, 420)):  # tall, then wide
        view.resize(*size)
        for m, shown in enumerate(view._shown):
            _square(qtbot, shown.plot)
            got = shown.plot.getViewBox().viewRange()
            _close(got, [[lo, hi], [lo, hi]], hi - lo)
            assert _holds(got, result["ball"])
            assert _holds(got, result["adv_points"][m])
            _same_scale(shown.plot)
    # The maps keep one size, so one scale across models too.
    sizes = {round(s.plot.getViewBox().size().width()) for s in view._shown}
    assert len(sizes) == 1


def test_a_mark_outside_the_grid_widens_the_view_to_hold_it(qtbot):
    coords = np.linspace(-1.0, 1.0, 5)
    theta = np.linspace(0, 2 * np.pi, 36)
    result = {
        "coords": coords, "pred": np.zeros((1, 5, 5), np.int16),
        "max_prob": np.ones((1, 5, 5), np.float32),
        "ball": np.stack([0.3 * np.cos(theta), 0.3 * np.sin(theta)], 1),
        "adv_points": np.array([[3.0, -0.5]]), "adv_pred": np.array([1]),
        "image": np.zeros((1, 4, 4), np.float32), "label": 0, "eps": 0.1,
        "meta": {"models": ["far"], "classes": ["zero", "one"]},
    }
    view = SliceView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    view.show_result(result)
    plot = view._shown[0].plot
    _square(qtbot, plot)
    (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
    lo, hi = _extent(coords)
    assert x1 > 3.0  # the adversarial point, with a margin beyond it
    assert x0 < lo  # the margin is on both sides
    # One scale: the taller-than-needed range is centred on the grid.
    assert y1 - y0 == pytest.approx(x1 - x0, rel=TOL)
    assert y0 + y1 == pytest.approx(0.0, abs=TOL * (x1 - x0))
    _same_scale(plot)
    assert _holds(plot.getViewBox().viewRange(), [[3.0, -0.5], [lo, lo], [hi, hi]])


def test_input_landscape_keeps_the_eps_square_square_and_in_view(qtbot, cnn, dress):
    x, y = dress
    result = input_landscape(cnn, x, y, grid=5, eps=0.1, span=0.05)
    view = LandscapeView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    view.show_result({**result, "meta": {"model": "fmnist-cnn-standard"}})
    _square(qtbot, view.map_plot)
    got = view.map_plot.getViewBox().viewRange()
    square = [[-0.1, -0.1], [0.1, -0.1], [0.1, 0.1], [-0.1, 0.1]]
    assert _holds(got, square)  # the span (0.05) is inside the eps ball
    assert got[0][1] < 0.12  # not much more than the ball and its margin
    _same_scale(view.map_plot)

    result = input_landscape(cnn, x, y, grid=5, eps=0.1)  # span 2·eps
    view.show_result({**result, "meta": {}})
    _square(qtbot, view.map_plot)
    lo, hi = _extent(result["coords"])
    _close(view.map_plot.getViewBox().viewRange(), [[lo, hi], [lo, hi]], hi - lo)


def test_the_path_to_another_checkpoint_stretches_to_the_box(qtbot):
    coords, ys = np.linspace(-0.5, 1.5, 5), np.linspace(-1.0, 1.0, 5)
    result = {"kind": "weights-2d", "coords": coords, "coords_y": ys,
              "loss": np.ones((5, 5)) + np.arange(5), "acc": np.ones((5, 5)),
              "n_images": 8, "interpolated": True}
    view = LandscapeView()
    qtbot.addWidget(view)
    view.resize(900, 500)
    view.show()
    view.show_result(result)
    box = view.map_plot.getViewBox()
    # α is no distance: the map fills the wide box, exactly the grid.
    qtbot.waitUntil(lambda: box.size().width() > 1.3 * box.size().height(),
                    timeout=5000)
    _close(box.viewRange(), [list(_extent(coords)), list(_extent(ys))], 2.0)
    assert not box.state["aspectLocked"]
