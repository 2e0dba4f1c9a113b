"""Overfitting alarms on synthetic per-epoch histories."""

from __future__ import annotations

from explorer.core.defenses import alarms


def _history(robust: list[float], train: list[float] | None = None,
             test: list[float] | None = None) -> list[dict]:
    """Validation robust accuracy ``robust``; the test figures, which no
    alarm may read, rise steadily unless ``test`` says otherwise."""
    train = train or [0.5 + 0.04 * i for i in range(len(robust))]
    test = test or [0.3 + 0.01 * i for i in range(len(robust))]
    return [{"train_acc": t, "val_robust_acc": r, "val_clean_acc": 0.8,
             "test_robust_acc": x, "test_clean_acc": 0.8}
            for r, t, x in zip(robust, train, test, strict=True)]


def test_catastrophic_fires_on_a_collapse_while_training_rises():
    alarm = alarms.catastrophic_overfitting(_history([0.2, 0.35, 0.40, 0.02]))
    assert alarm is not None
    assert (alarm.kind, alarm.epoch, alarm.best_epoch) == ("catastrophic", 4, 3)
    assert "epoch 3 is kept" in alarm.explanation
    history = _history([0.2, 0.35, 0.40, 0.02])
    assert alarms.check(history, kinds=alarms.KINDS) == alarm


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
    assert alarms.check([], kinds=alarms.KINDS) is None


def test_alarms_read_validation_figures_only():
    """A collapse or a decline in the test figures alone raises nothing; the
    same in the validation figures does."""
    steady = [0.2, 0.3, 0.35, 0.4, 0.41]
    collapsing = [0.2, 0.35, 0.40, 0.38, 0.02]
    assert alarms.check(_history(steady, test=collapsing),
                        kinds=alarms.KINDS) is None
    alarm = alarms.check(_history(collapsing, test=steady), kinds=alarms.KINDS)
    assert alarm is not None
    assert (alarm.kind, alarm.best_epoch) == ("catastrophic", 3)
    assert "Validation robust accuracy fell from 40.0%" in alarm.explanation
    declining = [0.30, 0.42, 0.40, 0.39, 0.38]
    assert alarms.robust_overfitting(_history(steady, test=declining)) is None
    assert alarms.robust_overfitting(_history(declining, test=steady)) is not None
    # A run without a validation split has no figures to warn on.
    test_only = [{k: v for k, v in row.items() if not k.startswith("val_")}
                 for row in _history(steady, test=collapsing)]
    assert alarms.check(test_only, kinds=alarms.KINDS) is None


def test_epoch_history_assembles_rows():
    history = alarms.EpochHistory()
    for key in alarms.EpochHistory.KEYS[:-1]:
        assert not history.add(key, 1, 0.5)
    assert not history.add("batch_loss", 1, 0.5)
    assert history.rows() == []
    assert history.last_complete() == 0
    assert not history.add("epoch_seconds", 1, 2.0)  # the validation figures
    assert not history.add("val_clean_acc", 1, 0.5)  # are still missing
    assert history.add("val_robust_acc", 1, 0.4)
    assert history.last_complete() == 1
    assert history.rows()[0]["lr"] == 0.5
    assert history.rows()[0]["val_robust_acc"] == 0.4


def test_epoch_history_of_a_run_without_validation():
    history = alarms.EpochHistory(validation=False)
    for key in alarms.EpochHistory.KEYS:
        history.add(key, 1, 0.5)
    assert history.last_complete() == 1
    assert not history.add("val_robust_acc", 2, 0.5)
