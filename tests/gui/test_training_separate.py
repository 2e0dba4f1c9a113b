"""The Training page's "separate process(es)": explorer train under torchrun,
its JSON lines on the page's curves, Stop ending the process group, Resume,
and a failing child's own message in the banner."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from explorer.core import launch
from explorer.gui.panels.training.panel import LAUNCH_KEY
from explorer.gui.widgets.processes_box import ProcessesBox

TINY = {"epochs": 1, "batch_size": 32, "eval_n": 16, "eval_steps": 2,
        "train_images": 64}


@pytest.fixture
def separate(training_page, monkeypatch):
    monkeypatch.setenv("EXPLORER_THREADS", "1")
    page = training_page
    page.processes.mode.setCurrentIndex(1)  # "separate process(es)"
    page.processes.processes.setValue(1)
    return page


def _group_of(handle) -> list[int]:
    """Collects the process group the job names in its first log line."""
    found: list[int] = []

    def on_log(event) -> None:
        if (m := re.match(r"started process group (\d+)", event.message)):
            found.append(int(m.group(1)))
    handle.log.connect(on_log)
    return found


def _left(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_box_lists_cpu_and_remembers_the_choice(ctx, separate):
    assert separate.processes.device_names == launch.device_choices()
    assert separate.processes.devices() == ["CPU"]
    assert separate.processes.processes.isEnabled()
    again = ProcessesBox(ctx.settings, LAUNCH_KEY)
    assert again.separate
    assert again.processes.value() == 1
    gpus = ProcessesBox(ctx.settings, "elsewhere", devices=["cuda:0", "cuda:1"])
    assert gpus.processes.maximum() == 2
    assert not gpus.processes.isEnabled()  # "in the app": nothing to choose
    gpus.mode.setCurrentIndex(1)
    gpus.device_boxes[0].setChecked(False)
    assert gpus.devices() == ["cuda:1"]
    gpus.processes.setValue(2)
    with pytest.raises(launch.ParamError, match="at most the 1 chosen GPU"):
        gpus.command(["train"], None)
    gpus.processes.setValue(1)
    argv, env = gpus.command(["train"], "WS")
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert argv[argv.index("--device") + 1] == "cuda"
    assert ProcessesBox(ctx.settings, "elsewhere", devices=["cuda:0", "cuda:1"]
                        ).devices() == ["cuda:1"]


@pytest.mark.slow
def test_a_separate_run_draws_its_curves_and_is_listed_once(qtbot, ctx, separate):
    page = separate
    page.form.choose("small-cnn", {"width": 4, "dense": 16}, "standard", {}, TINY)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    handle = page.handle
    assert handle is not None
    with qtbot.waitSignal(handle.finished, timeout=120_000):
        pass
    assert handle.state == "done", page.status.text()
    qtbot.waitUntil(lambda: page.curves.points("test_robust_acc") == 1)
    assert page.curves.points("train_loss") == 1
    assert page.curves.points("batch_loss") > 0
    qtbot.waitUntil(lambda: page.strip.epoch == 1)  # the strip's snapshot line
    assert len(page.strip.captions) == 8
    assert "held out for validation" in page.split_note.text()  # the plan line
    runs = ctx.workspace.runs(kind="train")
    assert [r.id for r in runs] == [page.run_id]  # the child's record, only
    assert runs[0].status == "finished"
    assert runs[0].config["limit_train"] == 64
    assert page.runs.ids() == [page.run_id]
    assert page.runs.status(page.run_id) == "finished"
    assert f"run {page.run_id} finished" in page.status.text()


@pytest.mark.slow
def test_stop_ends_the_process_group_and_resume_continues(qtbot, ctx, separate):
    """With 2 processes (the curves test above runs 1): torchrun and both
    workers end, rank 0 keeps last.pt, Resume runs 2 processes again."""
    processes = 2
    page = separate
    page.processes.processes.setValue(processes)
    page.form.choose("small-cnn", {"width": 4, "dense": 16}, "standard", {},
                     {**TINY, "epochs": 3, "train_images": 1200, "batch_size": 50})
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    handle = page.handle
    group = _group_of(handle)
    with qtbot.waitSignal(page.epoch_shown, timeout=120_000):
        pass
    assert page.running
    assert group
    run_id = page.run_id
    with qtbot.waitSignal(handle.finished, timeout=60_000):
        qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    assert handle.state == "cancelled"
    assert not _left(group[0])  # torchrun and its worker are gone
    assert (ctx.workspace.run_dir(run_id) / "last.pt").exists()
    assert page.runs.status(run_id) in ("cancelled", "interrupted")
    page.tabs.setCurrentIndex(1)
    page.runs.select([run_id])
    assert page.resume_button.isEnabled()
    qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(page.handle.finished, timeout=120_000):
        pass
    run = ctx.workspace.get(run_id)
    assert run.status == "finished", page.status.text()
    assert run.summary["epochs"] == 3
    assert run.summary["world_sizes"] == [processes, processes]  # both sessions
    assert [r.id for r in ctx.workspace.runs(kind="train")] == [run_id]


@pytest.mark.slow
def test_a_failing_child_says_its_error_in_the_banner(qtbot, ctx, separate, fmnist):
    page = separate
    ctx.session.set_data(fmnist, "no-such-set", "test")  # the child cannot load it
    page.form.choose("small-cnn", {"width": 4, "dense": 16}, "standard", {}, TINY)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(page.handle.finished, timeout=120_000):
        pass
    assert page.handle is None or page.handle.state == "failed"
    text = page.banner.text()
    assert page.banner.isVisibleTo(page)
    assert text.startswith("The training process failed: error: ")
    assert "no-such-set" in text
    assert "Traceback" not in text
    assert ctx.workspace.runs(kind="train") == []  # the child failed before one


def test_a_config_without_flags_is_refused_on_the_status_line(ctx, separate):
    """momentum has no flag of explorer train: the page says so, starts nothing."""
    page = separate
    page.form.choose("small-cnn", {"width": 4, "dense": 16}, "standard", {}, TINY)
    real = page.form.config
    page.form.config = lambda: real().replace(momentum=0.5)
    page.start_training()
    assert page.handle is None
    assert "momentum 0.5 has no flag of explorer train" in page.status.text()
    assert Path(ctx.workspace.path).exists()
