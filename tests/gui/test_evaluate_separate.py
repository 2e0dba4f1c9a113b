"""The Evaluate page's "separate process(es)": explorer eval --suite under
torchrun fills the table, the curve and the examples from its JSON lines."""

from __future__ import annotations

import os

import pytest
from gui_helpers import check_models
from PySide6.QtCore import Qt

from explorer.core import models

ONE = "fmnist-cnn-standard"


@pytest.fixture
def page(evaluate_page, monkeypatch):
    monkeypatch.setenv("EXPLORER_THREADS", "1")
    opened = evaluate_page({"suite": "quick", "eps": 0.1, "n": 16, "sweep": True,
                            "checks": False})
    opened.processes.mode.setCurrentIndex(1)  # "separate process(es)"
    return opened


@pytest.mark.slow
def test_a_separate_evaluation_fills_the_table(qtbot, ctx, page):
    check_models(page, [ONE])
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert page.handle is not None, page.status.text()
    with qtbot.waitSignal(page.evaluation_done, timeout=120_000):
        pass
    table = page.table
    assert table.verticalHeaderItem(0).text() == ONE
    for key in ("clean_acc", "apgd-ce", "robust_acc"):
        assert table.text(0, key).endswith("%")
    result = page.results["models"][0]
    assert result["model"] == ONE
    assert table.text(0, "robust_acc").rstrip("%").lstrip("★ ") == \
        f"{100 * result['robust_acc']:.1f}"
    assert page.curves.drawn() == 1  # the sweep's snapshot line
    assert len(page.examples.captions) == 2  # clean row + the model's
    runs = ctx.workspace.runs(kind="eval")
    assert [r.id for r in runs] == [page.run_id]  # the child's record, only
    assert result["run_id"] == page.run_id
    assert f"separate process (run {page.run_id})" in page.status.text()
    qtbot.waitUntil(lambda: not page.controls.running)
    assert page.export_button.isEnabled()


def test_the_session_model_stays_in_the_app(qtbot, ctx, page):
    ctx.session.set_model(models.load_builtin(ONE), ONE)
    check_models(page, [page.models.session_choice().name])
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert page.handle is None
    assert "the session model lives in this app" in page.status.text()


@pytest.mark.slow
def test_a_failing_child_says_its_error(qtbot, ctx, page, fmnist):
    ctx.session.set_data(fmnist, "no-such-set", "test")  # the child cannot load it
    check_models(page, [ONE])
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(page.handle.finished, timeout=120_000):
        pass
    text = page.status.text()
    assert text.startswith("Failed: error: ")
    assert "no-such-set" in text
    assert "Traceback" not in text
    assert page.run_button.isEnabled()


@pytest.mark.slow
def test_cancel_ends_the_process_group_and_closes_the_run(qtbot, ctx, page):
    page.settings_box.set_values({"n": 1000, "checks": True})
    check_models(page, [ONE, "fmnist-cnn-pgdat"])
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    handle, group = page.handle, []
    handle.log.connect(lambda e: group.append(int(e.message.split()[3].rstrip(":")))
                       if e.message.startswith("started process group") else None)
    qtbot.waitUntil(lambda: page.run_id is not None, timeout=120_000)
    with qtbot.waitSignal(handle.finished, timeout=60_000):
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    assert handle.state == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.killpg(group[0], 0)
    assert ctx.workspace.get(page.run_id).status == "cancelled"
