"""Look Inside's CIFS tab, driven like a user: a model with a CIFS block
shows clean vs adversarial channel importances for the clicked image; a
model without one says so in one line and cannot run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent

from explorer.core import models
from explorer.core.analysis.result_files import load_npz
from explorer.core.models import cifs
from explorer.gui.panels.inside.panel import InsidePanel

TIMEOUT = 30_000


@pytest.fixture
def panel(qtbot, ctx, fmnist):
    ctx.session.set_data(fmnist, "fashion-mnist-mini", "test")
    p = InsidePanel(ctx)
    qtbot.addWidget(p)
    p.resize(1150, 740)
    p.show()
    return p


def _cifs_model():
    torch.manual_seed(0)
    model = models.create("small-cnn", width=4, dense=16, cifs=True,
                          cifs_temperature=0.05).eval()
    with torch.no_grad():  # a sharper probe than a fresh one: masks differ
        cifs.blocks(model)[0].probe.weight.mul_(5)
    return model


def _click(tile) -> None:
    tile.mousePressEvent(QMouseEvent(
        QMouseEvent.Type.MouseButtonPress, QPointF(5, 5), QPointF(5, 5),
        Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier))


def test_channel_importances_clean_vs_adversarial(qtbot, panel, ctx, fmnist,
                                                  tmp_path):
    model = _cifs_model()
    ctx.session.set_model(model, "cifs-cnn")
    tab = panel.tab["cifs"]
    panel.tabs.setCurrentWidget(tab)
    assert not panel.channel_form.note.isVisible()
    assert tab.controls.run_button.isEnabled()
    _click(panel.grid._tiles[2])
    panel.channel_form.eps.setValue(0.2)
    panel.channel_form.steps.setValue(3)
    with qtbot.waitSignal(tab.result_shown, timeout=TIMEOUT):
        tab.controls.run_button.click()
    qtbot.waitUntil(lambda: not tab.controls.running, timeout=TIMEOUT)
    assert "Done" in tab.controls.status.text()

    view = panel.channel_view
    r = view.result
    assert int(r["label"]) == int(fmnist[2][1])
    x = fmnist[2][0].unsqueeze(0)
    expected = cifs.channel_importance(model, x)[0].numpy()
    np.testing.assert_allclose(r["clean"], expected, rtol=1e-5, atol=1e-6)
    assert np.abs(r["x_adv"] - r["image"]).max() <= 0.2 + 1e-6
    assert not np.allclose(r["adv"], r["clean"])  # the attack moved the mask
    clean_bars = view.clean.opts["height"]
    adv_bars = view.adv.opts["height"]
    assert len(clean_bars) == len(adv_bars) == 16
    assert list(clean_bars) == sorted(clean_bars, reverse=True)
    np.testing.assert_allclose(np.sort(adv_bars), np.sort(r["adv"]))
    assert view.legend_names() == ["clean", "adversarial"]
    axis = view.plot.getAxis("bottom").labelText
    assert "clean importance" in axis
    assert "importance" in view.plot.getAxis("left").labelText
    assert "PGD eps 0.2" in view.plot.titleLabel.text

    (run,) = [r for r in ctx.workspace.runs() if r.kind == "cifs"]
    saved = load_npz(ctx.workspace.run_dir(run.id) / "cifs.npz", "channels")
    np.testing.assert_allclose(saved["adv"], r["adv"])
    files = tab.controls.export(tmp_path / "channels.png")
    assert [f.name for f in files] == ["channels.png", "channels.csv",
                                       "channels.npz"]
    rows = files[1].read_text().splitlines()
    assert rows[0] == "rank,channel,clean_importance,adv_importance"
    assert len(rows) == 17

    # Reloading the saved file shows it in this tab again.
    panel.tabs.setCurrentIndex(0)
    assert panel.open_result(files[2])
    assert panel.tabs.currentWidget() is tab


def test_a_model_without_a_cifs_block_says_so(qtbot, panel, ctx):
    ctx.session.set_model(models.create("small-cnn", width=4, dense=16),
                          "plain-cnn")
    tab = panel.tab["cifs"]
    panel.tabs.setCurrentWidget(tab)
    note = panel.channel_form.note
    assert note.isVisible()
    assert note.text().startswith("This model has no CIFS block")
    assert not tab.controls.run_button.isEnabled()
    panel.run_channels()  # even when asked directly: the line, no job
    assert tab.controls.status.text().startswith("This model has no CIFS block")
    assert not tab.controls.running
    ctx.session.set_model(_cifs_model(), "cifs-cnn")
    assert not note.isVisible()
    assert tab.controls.run_button.isEnabled()
