"""Overfitting alarms on synthetic per-epoch histories."""

from __future__ import annotations

from explorer.core.defenses import alarms


def _history(robust: list[float], train: list[float] | None = None) -> list[dict]:
    train = train or [0.5 + 0.04 * i for i in range(len(robust))]
    return [{"train_acc": t, "test_robust_acc": r, "test_clean_acc": 0.8}
            for r, t in zip(robust, train, strict=True)]


def test_catastrophic_fires_on_a_collapse_while_training_rises():
    alarm = alarms.catastrophic_overfitting(_history([0.2, 0.35, 0.40, 0.02]))
    assert alarm is not None
    assert (alarm.kind, alarm.epoch, alarm.best_epoch) == ("catastrophic", 4, 3)
    assert "epoch 3 is kept" in alarm.explanation
    assert alarms.check(_history([0.2, 0.35, 0.40, 0.02])) == alarm


def test_catastrophic_fires_on_a_large_drop():
    assert alarms.catastrophic_overfitting(_history([0.5, 0.55, 0.2])) is not None


def test_catastrophic_quiet_when_training_accuracy_falls_too():
    history = _history([0.4, 0.45, 0.02], train=[0.6, 0.7, 0.3])
    assert alarms.catastrophic_overfitting(history) is None


def test_catastrophic_quiet_for_healthy_and_never_robust_runs():
    assert alarms.catastrophic_overfitting(_history([0.1, 0.2, 0.3, 0.32])) is None
    assert alarms.catastrophic_overfitting(_history([0.01, 0.02, 0.0])) is None
    assert alarms.catastrophic_overfitting(_history([0.4])) is None


def test_robust_overfitting_fires_after_patience_epochs_below_best():
    history = _history([0.30, 0.42, 0.40, 0.39, 0.38])
    alarm = alarms.robust_overfitting(history, patience=3)
    assert alarm is not None
    assert (alarm.kind, alarm.epoch, alarm.best_epoch) == ("robust", 5, 2)
    assert "epoch 2 is kept" in alarm.explanation


def test_robust_overfitting_waits_for_patience_and_ignores_noise():
    assert alarms.robust_overfitting(_history([0.30, 0.42, 0.40, 0.39])) is None
    assert alarms.robust_overfitting(_history([0.3, 0.42, 0.419, 0.418, 0.4])) is None
    assert alarms.robust_overfitting(_history([0.1, 0.2, 0.3, 0.4, 0.5])) is None
    assert alarms.check([]) is None


def test_epoch_history_assembles_rows():
    history = alarms.EpochHistory()
    for key in alarms.EpochHistory.KEYS[:-1]:
        assert not history.add(key, 1, 0.5)
    assert not history.add("batch_loss", 1, 0.5)
    assert history.rows() == []
    assert history.last_complete() == 0
    assert history.add("epoch_seconds", 1, 2.0)
    assert history.last_complete() == 1
    assert history.rows()[0]["lr"] == 0.5
