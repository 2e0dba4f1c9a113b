"""The Look Inside panel, driven like a user: slices, landscapes, features,
export, reload and the messages for what cannot be done."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent

from explorer.core import data, models
from explorer.core.analysis.result_files import load_npz
from explorer.gui.panels.inside.panel import InsidePanel

TIMEOUT = 30_000



@pytest.fixture(scope="module")
def cnn():
    return models.load_builtin("fmnist-cnn-standard")


@pytest.fixture
def panel(qtbot, ctx):
    p = InsidePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1150, 740)
    p.show()
    return p


@pytest.fixture
def loaded(panel, ctx, fmnist, cnn):
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    ctx.session.set_model(cnn, "fmnist-cnn-standard")
    return panel


def _click(tile) -> None:
    tile.mousePressEvent(QMouseEvent(
        QMouseEvent.Type.MouseButtonPress, QPointF(5, 5), QPointF(5, 5),
        Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier))


def _run(qtbot, panel, key: str) -> None:
    tab = panel.tab[key]
    with qtbot.waitSignal(tab.result_shown, timeout=TIMEOUT):
        tab.controls.run_button.click()
    qtbot.waitUntil(lambda: not tab.controls.running, timeout=TIMEOUT)


def test_slice_side_by_side_export_and_reload(qtbot, loaded, ctx, fmnist, tmp_path):
    _click(loaded.grid._tiles[3])
    assert loaded.index == 3
    assert loaded.grid.marked == {3}
    loaded.slice_form.grid.setValue(11)
    loaded.slice_form.check_models(["fmnist-cnn-pgdat"])
    _run(qtbot, loaded, "slice")
    view = loaded.slice_view
    assert view.result["pred"].shape == (2, 11, 11)
    assert view.names == ["fmnist-cnn-standard", "fmnist-cnn-pgdat"]
    assert [m.image.image.shape for m in view._shown] == [(11, 11, 3)] * 2
    legend = view.legend_names()
    for k, name in enumerate(fmnist.classes):
        assert f"{k}: {name}" in legend
    assert "adversarial point" in legend
    assert int(view.result["label"]) == int(fmnist[3][1])
    assert "Done" in loaded.tab["slice"].controls.status.text()

    # The result was saved in the workspace run folder.
    (run,) = [r for r in ctx.workspace.runs() if r.kind == "boundary"]
    saved = ctx.workspace.run_dir(run.id) / "boundary.npz"
    assert load_npz(saved, "slice")["pred"].shape == (2, 11, 11)

    files = loaded.tab["slice"].controls.export(tmp_path / "slice.png")
    assert [f.name for f in files] == ["slice.png", "slice.csv", "slice.npz"]
    assert not QImage(str(files[0])).isNull()
    lines = files[1].read_text().splitlines()
    assert lines[0] == "model,direction_1,direction_2,predicted_class,max_probability"
    assert len(lines) == 1 + 2 * 11 * 11
    assert lines[1].startswith("fmnist-cnn-standard,")

    # Reload into a fresh view: the same maps come back.
    loaded.tabs.setCurrentIndex(2)
    view.result = None
    assert loaded.open_result(files[2])
    assert loaded.tabs.currentWidget() is loaded.tab["slice"]
    np.testing.assert_array_equal(view.result["pred"], load_npz(saved)["pred"])
    assert view.names == ["fmnist-cnn-standard", "fmnist-cnn-pgdat"]


def test_weight_and_input_landscapes(qtbot, loaded, tmp_path):
    form = loaded.landscape_form
    form.space.setCurrentIndex(0)
    form.dims.setCurrentIndex(form.dims.findData(1))
    form.grid.setValue(5)
    form.n.setValue(16)
    _run(qtbot, loaded, "landscape")
    view = loaded.landscape_view
    assert view.result["kind"] == "weights-1d"
    assert view.currentIndex() == 0
    x, loss = view.loss_curve.getData()
    assert len(x) == 5
    assert np.all(np.isfinite(loss))
    assert "filter-normalised" in view.acc_plot.getAxis("bottom").labelText
    files = loaded.tab["landscape"].controls.export(tmp_path / "weights.svg")
    assert "<svg" in files[0].read_text()
    assert files[1].read_text().splitlines()[0] == "direction_1,loss,accuracy"

    form.space.setCurrentIndex(form.space.findData("input"))
    assert not form.n.isEnabled()
    assert form.eps.isEnabled()
    form.grid.setValue(7)
    _run(qtbot, loaded, "landscape")
    assert view.result["kind"] == "input"
    assert view.currentIndex() == 1
    assert view.image.image.shape == (7, 7)
    assert "l-inf pixels" in view.map_plot.getAxis("bottom").labelText


def test_landscape_between_two_checkpoints(qtbot, loaded, tmp_path):
    """The other checkpoint: the loaded standard model with its weights moved
    (same architecture), then junk, then the wider PGD-AT built-in."""
    other = tmp_path / "moved.safetensors"
    moved = models.load_builtin("fmnist-cnn-standard")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.05 * torch.randn_like(p))
    models.save(moved, other)
    form = loaded.landscape_form
    form.dims.setCurrentIndex(form.dims.findData(1))
    form.grid.setValue(3)
    form.n.setValue(8)
    form.between.setChecked(True)
    controls = loaded.tab["landscape"].controls
    controls.run_button.click()
    assert controls.status.text() == "Choose the other checkpoint's file first."
    form.other.setText(str(other))
    _run(qtbot, loaded, "landscape")
    view = loaded.landscape_view
    assert bool(view.result["interpolated"])
    np.testing.assert_allclose(view.result["coords"], [-0.5, 0.5, 1.5])
    assert "other checkpoint" in view.acc_plot.getAxis("bottom").labelText

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"nonsense")
    form.other.setText(str(junk))
    controls.run_button.click()
    # Events are queued: nothing is delivered before the wait below starts.
    with qtbot.waitSignal(controls.handle.finished, timeout=TIMEOUT):
        pass
    assert "Failed" in controls.status.text()
    assert "junk.safetensors" in controls.status.text()

    wider = tmp_path / "pgdat.safetensors"  # small-cnn at width 32, not 16
    models.save(models.load_builtin("fmnist-cnn-pgdat"), wider)
    form.other.setText(str(wider))
    controls.run_button.click()
    with qtbot.waitSignal(controls.handle.finished, timeout=TIMEOUT):
        pass
    status = controls.status.text()
    assert "Failed" in status
    assert ("the other checkpoint's 'body.0.weight' has shape (32, 1, 3, 3), "
            "the model's (16, 1, 3, 3)") in status


def test_cancel_a_long_landscape(qtbot, loaded):
    form = loaded.landscape_form
    form.grid.setValue(201)  # far too long to finish before the cancel
    controls = loaded.tab["landscape"].controls
    controls.run_button.click()
    assert controls.cancel_button.isEnabled()
    with qtbot.waitSignal(controls.handle.finished, timeout=TIMEOUT):
        controls.cancel_button.click()
    assert controls.status.text() == "Cancelled."
    assert controls.run_button.isEnabled()
    assert loaded.landscape_view.result is None


def test_feature_pca_of_32_images(qtbot, loaded, fmnist, tmp_path):
    form = loaded.feature_form
    form.n.setValue(32)
    form.eps.setValue(0.1)
    _run(qtbot, loaded, "features")
    view = loaded.feature_view
    assert view.result["clean"].shape == (32, 2)
    assert view.result["adv"].shape == (32, 2)
    assert len(view.clean.data) == 32
    assert len(view.adv.data) == 32
    legend = view.legend_names()
    assert f"0: {fmnist.classes[0]}" in legend
    assert "adversarial (hollow)" in legend
    assert "MMC centre" not in legend  # a plain cross-entropy model
    assert "variance" in view.plot.getAxis("bottom").labelText
    files = loaded.tab["features"].controls.export(tmp_path / "features.png")
    lines = files[1].read_text().splitlines()
    assert lines[0].startswith("index,label,pred_clean,clean_1,clean_2,pred_adv")
    assert len(lines) == 33


def test_toy_set_and_missing_model_messages(qtbot, panel, ctx, fmnist):
    assert "Choose a data set" in panel.banner.text()
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    assert "Choose a model" in panel.banner.text()
    ctx.session.set_data(data.load("moons", "test"), "moons", "test")
    assert "'moons' is a 2-D toy set" in panel.banner.text()
    panel.tab["slice"].controls.run_button.click()
    assert "2-D toy set" in panel.tab["slice"].controls.status.text()
    assert panel.tab["slice"].controls.handle is None
    assert panel.grid.captions == []


def test_bad_result_files_are_named(panel, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    assert not panel.open_result(junk)
    assert str(junk) in panel.message.text()
    assert "not a result file" in panel.message.text()
    lacking = tmp_path / "lacking.npz"
    np.savez(lacking, kind=np.array("slice"), coords=np.zeros(3))
    assert not panel.open_result(lacking)
    assert str(lacking) in panel.message.text()
    assert "needs" in panel.message.text()
    assert panel.slice_view.result is None


def test_export_before_any_result_says_so(panel, tmp_path):
    assert panel.tab["features"].controls.export(tmp_path / "x.png") == []
    assert "Nothing to export" in panel.tab["features"].controls.status.text()


def test_reloaded_tsne_with_mmc_centres(panel, tmp_path):
    from explorer.core.analysis.result_files import save_npz

    rng = np.random.default_rng(0)
    path = save_npz(tmp_path / "tsne.npz", {
        "kind": "features", "clean": rng.normal(size=(6, 2)),
        "labels": np.array([0, 1, 2, 0, 1, 2]), "pred_clean": np.zeros(6, int),
        "centres": rng.normal(size=(3, 2)), "meta": {"classes": ["a", "b", "c"]}})
    assert panel.open_result(path)
    view = panel.feature_view
    assert panel.tabs.currentWidget() is panel.tab["features"]
    assert view.plot.getAxis("bottom").labelText == "t-SNE 1 (no units)"
    assert len(view.centres.data) == 3
    assert len(view.adv.data) == 0
    assert view.legend_names() == ["0: a", "1: b", "2: c", "clean (filled)",
                                   "MMC centre"]
    assert "Opened tsne.npz" in panel.tab["features"].controls.status.text()
