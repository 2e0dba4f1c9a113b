"""The Training page raises only the overfitting alarms its method admits.

The trainer is replaced by a job that replays per-epoch figures (the same
metric events train_run yields), so each run shows a known history in an
instant; everything after the job (the page's history, the alarm check, the
banner, the split note) is the page's own code.
"""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.defenses import alarms
from explorer.core.defenses.run_job import PLAN
from explorer.core.jobs import Done, Metric, Snapshot
from explorer.gui.panels.training import panel as training

SMALL = {"epochs": 10, "batch_size": 64, "eval_n": 64, "eval_steps": 2}
# Validation robust accuracy per epoch of the MLP trained with "standard" on
# the mini set (measured): it falls while training accuracy rises.
FALLING = ([0.304, 0.236, 0.236, 0.18, 0.202, 0.186, 0.17, 0.162, 0.162, 0.164],
           [0.631, 0.795, 0.818, 0.83, 0.857, 0.89, 0.909, 0.911, 0.914, 0.914])
# Robust accuracy peaks at epoch 2, declines, then collapses at epoch 5.
COLLAPSE = ([0.30, 0.42, 0.40, 0.39, 0.02], [0.5, 0.55, 0.6, 0.65, 0.7])


def replay(robust: list[float], train: list[float]):
    """A stand-in for train_run that yields these epochs' figures."""
    keys = alarms.EpochHistory.KEYS + alarms.EpochHistory.VAL_KEYS

    def job(config, *, run_dir, token=None, **_):
        yield Snapshot(0, len(robust), {"n_train": np.array(540),
                                        "val_n": np.array(60),
                                        "steps_per_epoch": np.array(9)}, PLAN)
        for epoch, (r, t) in enumerate(zip(robust, train, strict=True), 1):
            token.check()
            row = dict.fromkeys(keys, 0.5) | {"train_acc": t, "val_robust_acc": r}
            for name in keys:
                yield Metric(name, row[name], epoch)
        yield Done({"epochs": len(robust)})

    return job


@pytest.fixture
def run(qtbot, training_page, monkeypatch):
    """``run(defense, params, history)``: Start on the page with the job
    replaying ``history``; returns when the page holds every epoch."""

    def run_(defense: str, params: dict, history) -> None:
        monkeypatch.setattr(training, "train_run", replay(*history))
        training_page.form.choose("small-cnn", {"width": 4, "dense": 16}, defense,
                                  params, SMALL)
        training_page.start_button.click()
        with qtbot.waitSignal(training_page.handle.finished, timeout=20_000):
            pass
        epochs = len(history[0])
        qtbot.waitUntil(lambda: training_page.history.last_complete() == epochs)

    return run_


def test_standard_training_raises_no_alarm_and_says_why(training_page, run):
    page = training_page
    run("standard", {}, FALLING)
    assert page.history.last_complete() == 10
    assert page.alarm.isHidden()
    assert page.alarm.alarm is None
    note = page.split_note.text()
    assert "The best checkpoint (★) follows the validation curves" in note
    assert ("No overfitting alarm for Standard training: it trains on no "
            "adversarial examples.") in note
    assert "robust accuracy simply falls" in page.split_note.toolTip()


def test_pgd_at_warns_of_robust_overfitting_and_says_why(training_page, run):
    page = training_page
    run("pgd-at", {}, FALLING)
    assert not page.alarm.isHidden()
    assert page.alarm.title.text() == "Robust overfitting since epoch 1"
    tip = page.alarm.toolTip()
    assert "Robust overfitting (Rice et al. 2020)" in tip
    assert ("Shown because PGD adversarial training trains on adversarial "
            "examples (7 attack steps per update)") in tip
    assert "and the alarms follow the validation curves" in page.split_note.text()


def test_a_collapse_is_catastrophic_for_fast_at_only(training_page, run):
    page = training_page
    run("pgd-at", {"steps": 3}, COLLAPSE)  # multi-step: the decline only
    assert page.alarm.title.text() == "Robust overfitting since epoch 2"
    assert "not watched for" in page.alarm.toolTip()
    run("fast-at", {}, COLLAPSE)
    assert not page.alarm.isHidden()
    assert page.alarm.title.text() == "Catastrophic overfitting at epoch 5"
    tip = page.alarm.toolTip()
    assert "Catastrophic overfitting (Wong et al. 2020)" in tip
    assert "trains on single-step adversarial examples" in tip
    run("pgd-at", {"steps": 1}, COLLAPSE)  # one PGD step: single-step too
    assert page.alarm.title.text() == "Catastrophic overfitting at epoch 5"
