"""Evaluate page: the Transfer tab's matrix and the Trade-off tab's scatter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gui_helpers import check_models
from PySide6.QtCore import Qt

from explorer.core import data, models
from explorer.core.analysis.tradeoff import pareto_front, time_text, training_seconds
from explorer.core.analysis.transfer import transfer_job
from explorer.core.jobs import run_to_end

STD, PGDAT, TRADES = "fmnist-cnn-standard", "fmnist-cnn-pgdat", "fmnist-cnn-trades"
FAST = {"sweep_eps": [], "checks": False, "examples": 0,
        "suite_options": {"steps": 2}}



@pytest.fixture
def panel(evaluate_page):
    return evaluate_page({"suite": "quick", "eps": 0.1, "n": 8, "sweep": False,
                          "checks": False}, options=FAST)


def test_the_transfer_button_fills_the_heat_map(qtbot, ctx, panel, fmnist):
    names = [STD, PGDAT, TRADES]
    check_models(panel, names)
    tab = panel.transfer
    panel.tabs.setCurrentWidget(tab)
    tab.steps.setValue(2)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is not None, tab.status.text()
    assert not tab.run_button.isEnabled()
    with qtbot.waitSignal(tab.handle.finished, timeout=60000):
        pass
    assert tab.controls.last_state == "done"
    results = tab.results
    assert results["models"] == names
    assert tab.heat.names == names
    x, y = fmnist.as_tensors(0, 8)
    direct = run_to_end(transfer_job({n: models.load_builtin(n) for n in names},
                                     x, torch.as_tensor(y), "pgd", 0.1, steps=2))
    assert results["matrix"] == direct["matrix"]  # the page's eps, n, steps
    for i in range(3):
        for j in range(3):
            assert tab.heat.cell_text(i, j) == f"{100 * direct['matrix'][i][j]:.1f}"
        assert tab.heat.cell_text(3, i) == f"{100 * direct['clean_acc'][i]:.1f}"
    assert tab.heat.ticks == {"left": [*names, "clean (no attack)"],
                              "bottom": names}
    assert tab.heat.plot.getAxis("left").labelText == "crafted on"
    assert tab.heat.plot.getAxis("bottom").labelText == "evaluated on"
    assert "done" in tab.status.text()
    run = ctx.workspace.runs(kind="eval")[0]
    assert run.config["transfer"] is True
    qtbot.waitUntil(lambda: ctx.workspace.get(run.id).status == "finished")


def test_the_transfer_matrix_can_be_cancelled(qtbot, panel):
    check_models(panel, [STD, PGDAT])
    panel.settings_box.set_values({"n": 1000})
    tab = panel.transfer
    tab.steps.setValue(200)
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is not None
    with qtbot.waitSignal(tab.handle.finished, timeout=20000):
        qtbot.mouseClick(tab.controls.cancel_button, Qt.MouseButton.LeftButton)
    assert tab.controls.last_state == "cancelled"
    assert tab.results is None
    assert tab.run_button.isEnabled()


def test_bad_transfer_input_is_a_message(qtbot, ctx, panel):
    tab = panel.transfer
    check_models(panel, [STD])
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "a transfer matrix needs at least 2" in tab.status.text()
    check_models(panel, [STD, PGDAT])
    panel.settings_box.set_values({"eps": 0.0})
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.handle is None
    assert "budget must be in (0, 1]" in tab.status.text()
    ctx.session.set_data(data.load("moons", "test"), "moons", "test")
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert "'moons' is a 2-D toy set" in tab.status.text()


def test_the_trade_off_scatter_shows_each_model_with_its_training_time(
        qtbot, ctx, panel, tmp_path):
    torch.manual_seed(0)
    run = ctx.workspace.create_run("train", {"defense": "standard"})
    weights = Path(ctx.workspace.run_dir(run.id)) / "best.safetensors"
    models.save(models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1),
                weights)
    ctx.workspace.finish(run.id, "finished", summary={"seconds": 61.0})
    panel.models.refresh_button.click()
    plain = tmp_path / "plain.safetensors"  # its metadata records no time
    models.save(models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1), plain)
    assert panel.models.add_file(str(plain)) is None
    names = [STD, TRADES, f"run {run.id}", "plain"]
    check_models(panel, names)
    with qtbot.waitSignal(panel.evaluation_done, timeout=60000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    view = panel.tradeoff
    qtbot.waitUntil(lambda: all("…" not in p[3] for p in view.shown_points()),
                    timeout=20000)
    shown = view.shown_points()
    assert [p[0] for p in shown] == names
    for (name, x, y, label), entry in zip(shown, panel.results["models"],
                                          strict=True):
        assert entry["model"] == name
        assert x == pytest.approx(100 * entry["clean_acc"])
        assert y == pytest.approx(100 * entry["robust_acc"])
        assert label.startswith(f"{name}\ntraining time: ")
    for i, name in enumerate((STD, TRADES)):  # what the built-ins' metadata says
        recorded = training_seconds(models.load_builtin(name).meta.training)
        assert shown[i][3].endswith(time_text(recorded))
    assert shown[2][3].endswith("61 s")  # the training run's record
    assert shown[3][3].endswith("unknown")  # recorded nowhere: not made up
    front = pareto_front([(p[1], p[2]) for p in shown])
    assert view.front_names() == ([names[i] for i in front] if len(front) > 1
                                  else [])
    view.show_front.setChecked(False)
    assert view.front_names() == []
    xs, _ = view.frontier.getData()
    assert xs is None or len(xs) == 0
