"""Which overfitting alarms a run can raise follows how its method trains."""

from __future__ import annotations

import pytest

from explorer.core.defenses import alarms, registry
from explorer.core.defenses.alarm_scope import scope

CAT, ROB = alarms.CATASTROPHIC, alarms.ROBUST_OVERFITTING
CLEAN, SINGLE, MULTI = (), (CAT, ROB), (ROB,)
# Every registered method with its default parameters: what its training
# examples are. A new method must be placed here (the test below fails).
EXPECTED = {
    "standard": CLEAN, "rce": CLEAN, "adp": CLEAN, "gaussian": CLEAN,
    "distillation": CLEAN, "mmc": CLEAN,  # mmc: adversarial is off by default
    "fast-at": SINGLE, "free-at": SINGLE, "ensemble-at": SINGLE,
    "pgd-at": MULTI, "trades": MULTI, "adv-avg": MULTI, "adv-max": MULTI,
    "msd": MULTI, "sat": MULTI, "mng-ac": MULTI, "noilin": MULTI,
    "smooth": MULTI, "smoothadv": MULTI, "pgd-at-l2": MULTI, "pgd-at-l1": MULTI,
    "soe": MULTI, "cifs": MULTI, "gat": MULTI,
}  # fmt: skip


def _history(robust: list[float], train: list[float] | None = None) -> list[dict]:
    train = train or [0.5 + 0.04 * i for i in range(len(robust))]
    return [{"train_acc": t, "val_robust_acc": r} for r, t in
            zip(robust, train, strict=True)]


# Measured: the MLP trained with "standard" for 10 epochs on the mini set
# (validation robust accuracy per epoch): robust accuracy falls as it fits.
UNDEFENDED = _history([0.304, 0.236, 0.236, 0.18, 0.202, 0.186, 0.17, 0.162,
                       0.162, 0.164],
                      [0.631, 0.795, 0.818, 0.83, 0.857, 0.89, 0.909, 0.911,
                       0.914, 0.914])
# Peak at epoch 2, then a slow decline and a collapse at the last epoch.
COLLAPSE = _history([0.30, 0.42, 0.40, 0.39, 0.02])


def test_every_method_declares_its_training_examples():
    assert set(EXPECTED) == set(registry.names())
    found = {name: scope(name, {}).kinds for name in registry.names()}
    assert found == EXPECTED


def test_standard_training_raises_nothing_where_pgd_at_warns():
    standard, pgd = scope("standard", {}), scope("pgd-at", {})
    assert alarms.check(UNDEFENDED, kinds=standard.kinds) is None
    alarm = alarms.check(UNDEFENDED, kinds=pgd.kinds)
    assert alarm is not None
    assert (alarm.kind, alarm.best_epoch) == (ROB, 1)
    assert "No overfitting alarm for Standard training" in standard.reason
    assert "no adversarial examples" in standard.reason
    assert "PGD adversarial training trains on adversarial examples" in pgd.reason
    assert "7 attack steps per update" in pgd.reason


def test_a_collapse_is_catastrophic_for_single_step_methods_only():
    fast = alarms.check(COLLAPSE, kinds=scope("fast-at", {}).kinds)
    assert fast is not None
    assert fast.kind == CAT
    free = alarms.check(COLLAPSE, kinds=scope("free-at", {"replays": 8}).kinds)
    assert free is not None
    assert free.kind == CAT
    multi = alarms.check(COLLAPSE, kinds=scope("trades", {}).kinds)
    assert multi is not None
    assert multi.kind == ROB  # the decline, not the collapse
    assert alarms.check(COLLAPSE, kinds=scope("gaussian", {}).kinds) is None
    assert "single-step" in scope("fast-at", {}).reason


@pytest.mark.parametrize(("name", "params", "kinds"), [
    ("pgd-at", {"steps": 1}, SINGLE),
    ("pgd-at", {"steps": 2}, MULTI),
    ("trades", {"steps": 1}, SINGLE),
    ("adv-max", {"steps": 1}, SINGLE),
    ("smoothadv", {"steps": 1}, SINGLE),
    ("mmc", {"adversarial": True}, MULTI),
    ("mmc", {"adversarial": True, "steps": 1}, SINGLE),
    ("smooth", {"base": "standard"}, CLEAN),
    ("smooth", {"base": "pgd-at", "steps": 1}, SINGLE),
])
def test_the_chosen_parameters_decide(name, params, kinds):
    assert scope(name, params).kinds == kinds
    cls = registry.defense_class(name)
    cfg = cls(**params).cfg  # a run's validated parameters say the same
    assert scope(name, cfg).kinds == kinds


def test_a_method_this_version_does_not_know_keeps_both_alarms():
    unknown = scope("from-the-future", {})
    assert unknown.kinds == SINGLE
    assert "'from-the-future'" in unknown.reason


def test_check_names_an_unknown_kind():
    with pytest.raises(ValueError, match=r"unknown alarm kind.*'overfit'"):
        alarms.check(COLLAPSE, kinds=("overfit",))


def test_each_alarm_says_what_it_means():
    assert "Rice et al. 2020" in alarms.MEANING[ROB]
    assert "Wong et al. 2020" in alarms.MEANING[CAT]
