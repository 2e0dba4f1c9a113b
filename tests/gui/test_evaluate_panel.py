"""Evaluate & Compare: check models, run, watch the table fill, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gui_helpers import assert_apart, assert_shape_kept, check_models
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from explorer.core import data, models
from explorer.gui.panels.evaluate.compare_views import (
    SHORT_CHECKS,
    CheckVerdicts,
    ExampleMatrix,
)

TWO = ["fmnist-cnn-standard", "fmnist-cnn-trades"]
FAST = {"sweep_eps": [0.05, 0.1], "sweep_steps": 2, "check_n": 8, "examples": 4,
        "suite_options": {"steps": 5},
        "check_options": {"steps": 1, "square_queries": 5, "spsa_images": 0}}



@pytest.fixture
def panel(evaluate_page):
    return evaluate_page({"suite": "quick", "eps": 0.1, "n": 16}, options=FAST)


def _run_and_wait(qtbot, panel):
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.handle is not None, panel.status.text()
    with qtbot.waitSignal(panel.handle.finished, timeout=60000):
        pass


def test_two_builtins_fill_the_table_mark_the_best_and_export(
        qtbot, ctx, panel, tmp_path, monkeypatch):
    check_models(panel, TWO)
    with qtbot.waitSignal(panel.evaluation_done, timeout=60000):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    table = panel.table
    assert [table.verticalHeaderItem(r).text() for r in range(2)] == TWO
    for row in range(2):
        for key in ("clean_acc", "apgd-ce", "robust_acc"):
            assert table.text(row, key).endswith("%")
    robust = [panel.results["models"][r]["robust_acc"] for r in range(2)]
    best = 0 if robust[0] > robust[1] else 1
    assert table.text(best, "robust_acc").startswith("★")
    assert table.item(best, table.keys.index("robust_acc")).font().bold()
    assert panel.curves.drawn() == 2
    assert len(panel.checks.verdicts) == 12  # six checks for each model
    assert len(panel.examples.captions) == 3  # clean row + one per model
    assert " → " in panel.examples.captions[1][0]
    qtbot.waitUntil(lambda: panel.export_button.isEnabled())
    run = ctx.workspace.get(ctx.workspace.runs(kind="eval")[0].id)
    assert run.config["models"] == {n: n for n in TWO}
    qtbot.waitUntil(lambda: ctx.workspace.get(run.id).status == "finished")

    asked = []

    def choose(_parent, _title, start):
        asked.append(start)
        return str(tmp_path / "out")

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", choose)
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert asked == [str(ctx.workspace.run_dir(run.id))]
    for name in ("report.html", "results.csv", "results.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert all(name in page for name in TWO)


def test_no_model_checked_says_so(qtbot, panel):
    check_models(panel, [])
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.handle is None
    assert "Check at least one model" in panel.status.text()


def test_a_model_that_does_not_fit_the_data_is_a_message(qtbot, panel, tmp_path):
    path = tmp_path / "cifar_shaped.safetensors"
    models.save(models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1), path)
    assert panel.models.add_file(str(path)) is None
    check_models(panel, ["fmnist-cnn-standard", "cifar_shaped"])
    _run_and_wait(qtbot, panel)
    assert panel.controls.last_state == "failed"
    assert "'cifar_shaped' does not fit the data" in panel.status.text()
    assert panel.results is None
    assert not panel.export_button.isEnabled()


def test_a_file_that_fails_to_load_is_a_message(qtbot, panel, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model at all")
    assert panel.models.add_file(str(bad)) is None
    assert "already in the list" in panel.models.add_file(str(bad))
    assert "is not a file" in panel.models.add_file(str(tmp_path / "missing.pt"))
    check_models(panel, ["broken"])
    _run_and_wait(qtbot, panel)
    assert panel.controls.last_state == "failed"
    assert "'broken' could not be loaded" in panel.status.text()


def test_finished_training_runs_are_listed(ctx, panel):
    run = ctx.workspace.create_run("train", {"defense": "standard"})
    weights = Path(ctx.workspace.run_dir(run.id)) / "best.safetensors"
    models.save(models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1),
                weights)
    ctx.workspace.finish(run.id, "finished", summary={})
    panel.models.refresh_button.click()
    kinds = {c.name: c.kind for c in panel.models.choices()}
    assert kinds[f"run {run.id}"] == "run"


def test_a_toy_data_set_or_none_says_what_to_choose(qtbot, ctx, panel):
    check_models(panel, TWO)
    ctx.session.set_data(data.load("moons", "test"), "moons", "test")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.handle is None
    assert "'moons' is a 2-D toy set" in panel.status.text()
    ctx.session.set_data(None, "", "")
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "Choose a data set" in panel.status.text()


def _verdicts(passed: list[bool]) -> dict[str, np.ndarray]:
    keys = list(SHORT_CHECKS)[:len(passed)]
    n = len(keys)
    return {"key": np.array(keys), "name": np.array(keys), "passed": np.array(passed),
            "value_text": np.array(["measured"] * n),
            "explanation": np.array(["what it means"] * n)}


def test_masking_table_gives_model_names_room_and_their_full_text(qtbot):
    long = "checkpoints-of-a-long-training-run-with-many-settings-epoch-0042"
    names = ["fmnist-cnn-standard", "fmnist-cnn-gaussian", long]
    view = CheckVerdicts()
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    view.prepare(names)
    for row in range(3):
        view.set_checks(row, _verdicts([True, row != 2]))
    table = view.table
    assert table.horizontalHeaderItem(0).text() == "model"
    assert [table.item(r, 0).text() for r in range(3)] == names
    assert [table.item(r, 0).toolTip() for r in range(3)] == names
    metrics = table.fontMetrics()
    qtbot.waitUntil(lambda: table.columnWidth(0) > 0, timeout=5000)
    width = table.columnWidth(0)
    for name in names[:2]:  # the built-in names show whole
        assert metrics.horizontalAdvance(name) <= width
    # The long one is cut in the middle at a bounded width, on one line.
    assert width < metrics.horizontalAdvance(long)
    assert width <= 30 * metrics.averageCharWidth()
    assert table.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert not table.wordWrap()
    assert table.rowHeight(2) == table.rowHeight(0)
    # A verdict names its model in full too, and so does the note below.
    assert table.item(2, 2).text() == "⚠"
    assert table.item(2, 2).toolTip().startswith(f"{long} — ")
    assert f"⚠ {long} — " in view.notes.text()


def test_example_captions_elide_and_images_keep_their_shape(qtbot):
    """The example matrix: a 20×40 image is drawn twice as wide as high, a
    long class name is elided to the column with all of it in the tooltip,
    and the captions of neighbouring examples never overlap."""
    matrix = ExampleMatrix()
    qtbot.addWidget(matrix)
    classes = ("a class name far too long for an example column", "Bag", "Coat")
    matrix.prepare(["fmnist-cnn-standard"], classes)
    images = np.random.default_rng(0).random((3, 1, 20, 40), dtype=np.float32)
    y = np.array([0, 1, 2])
    matrix.set_row(0, images, y, None)
    matrix.set_row(1, images, y, np.array([1, 1, 0]))
    matrix.resize(900, 300)
    with qtbot.waitExposed(matrix):
        matrix.show()
    cells = [matrix.grid.itemAtPosition(r, c).widget()
             for r in (2, 3) for c in (1, 2, 3)]
    pictures, captions = cells[:3], cells[3:]
    for picture in pictures:
        assert_shape_kept(picture, 20, 40)
    assert_apart(captions)
    first, second = captions[0].text().split("\n")
    assert first.endswith("…")
    assert second == "→ Bag"
    assert captions[0].toolTip() == f"{classes[0]} → Bag"
    assert captions[1].text() == "Bag\n→ Bag"  # short names stay whole
    assert matrix.captions[1][0] == f"{classes[0]} → Bag"
