"""Warnings about a training run, read from its per-epoch history.

Pure functions over ``history``: one mapping per finished epoch (epoch 1
first) holding at least ``train_acc`` and ``val_robust_acc`` (fractions).
They read the validation figures only (the held-out training images, see
:mod:`explorer.core.training.split`), never the test ones: an alarm advises
when to stop and which checkpoint to keep, which is model selection. A run
without a validation split (``val_fraction`` 0) raises none.

- Catastrophic overfitting (Wong et al. 2020): with single-step training
  (FGSM, Fast-AT) robust accuracy against PGD suddenly collapses while the
  training accuracy keeps rising: the model learned to defeat the cheap
  attack only.
- Robust overfitting (Rice et al. 2020): validation robust accuracy peaks
  and then declines for several epochs while training goes on.

Both are failures of adversarial training: on a model trained on clean
images robust accuracy simply falls as the model fits, which is no alarm.
:func:`check` therefore raises only the ``kinds`` a run's method admits,
which :mod:`explorer.core.defenses.alarm_scope` reads from the method.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

History = Sequence[Mapping[str, float]]
ROBUST = "val_robust_acc"  # the figure every alarm reads

COLLAPSE_DROP = 0.30  # robust accuracy lost since its best (fraction)
COLLAPSE_FLOOR = 0.05  # or robust accuracy below this after having been useful
USEFUL = 0.10  # a best robust accuracy below this never "collapses"


CATASTROPHIC, ROBUST_OVERFITTING = "catastrophic", "robust"
KINDS = (CATASTROPHIC, ROBUST_OVERFITTING)
# What each alarm means, in words (the banner's tooltip).
MEANING = {
    CATASTROPHIC: (
        "Catastrophic overfitting (Wong et al. 2020): in single-step "
        "adversarial training (FGSM, Fast-AT, Free-AT) robust accuracy against "
        "multi-step PGD collapses within an epoch while training accuracy "
        "keeps rising: the model has learnt to defeat its cheap training "
        "attack, not to resist attacks."),
    ROBUST_OVERFITTING: (
        "Robust overfitting (Rice et al. 2020): in adversarial training, "
        "robust accuracy on held-out images peaks and then declines for "
        "several epochs while training goes on: the model fits the training "
        "set's adversarial examples instead of generalising. Early stopping "
        "at the best epoch is the remedy."),
}


@dataclass(frozen=True)
class Alarm:
    kind: str  # "catastrophic" or "robust"
    epoch: int  # the epoch at which the alarm fired
    title: str
    explanation: str
    best_epoch: int


def _best(history: History) -> tuple[int, float]:
    """(1-based epoch, value) of the best validation robust accuracy; first
    on ties (the trainer's rule for the best checkpoint)."""
    values = [float(h[ROBUST]) for h in history]
    top = max(values)
    return values.index(top) + 1, top


def catastrophic_overfitting(history: History) -> Alarm | None:
    """Robust accuracy collapsed at the last epoch while train accuracy rose."""
    if len(history) < 2:
        return None
    best_epoch, best = _best(history)
    last = history[-1]
    robust = float(last[ROBUST])
    collapsed = best >= USEFUL and (best - robust >= COLLAPSE_DROP
                                    or robust < COLLAPSE_FLOOR)
    rising = float(last["train_acc"]) >= float(history[best_epoch - 1]["train_acc"])
    if not (collapsed and rising and best_epoch < len(history)):
        return None
    epoch = len(history)
    return Alarm(
        kind="catastrophic", epoch=epoch, best_epoch=best_epoch,
        title=f"Catastrophic overfitting at epoch {epoch}",
        explanation=(
            f"Validation robust accuracy fell from {100 * best:.1f}% (epoch "
            f"{best_epoch}) to "
            f"{100 * robust:.1f}% while training accuracy kept rising: the model "
            "learned to beat the cheap training attack, not stronger ones. "
            "Further epochs rarely recover; use a smaller step size, more "
            "attack steps or a multi-step defense. The best checkpoint from "
            f"epoch {best_epoch} is kept."),
    )


def robust_overfitting(history: History, patience: int = 3,
                       tolerance: float = 0.005) -> Alarm | None:
    """Validation robust accuracy below its best for the last ``patience``
    epochs."""
    if len(history) <= patience:
        return None
    best_epoch, best = _best(history)
    tail = history[-patience:]
    if len(history) - best_epoch < patience or any(
            float(h[ROBUST]) > best - tolerance for h in tail):
        return None
    epoch = len(history)
    now = float(history[-1][ROBUST])
    return Alarm(
        kind="robust", epoch=epoch, best_epoch=best_epoch,
        title=f"Robust overfitting since epoch {best_epoch}",
        explanation=(
            f"Validation robust accuracy peaked at {100 * best:.1f}% in epoch "
            f"{best_epoch} and has stayed lower for {epoch - best_epoch} epochs "
            f"(now {100 * now:.1f}%). Training longer makes the model fit its "
            "training attacks rather than generalise; stop here or use early "
            f"stopping. The best checkpoint from epoch {best_epoch} is kept."),
    )


def check(history: History, *, kinds: Collection[str]) -> Alarm | None:
    """The most serious alarm of ``kinds`` for ``history``, if any (none
    without validation figures). ``kinds``: the alarms that fit the run's
    method (``alarm_scope.scope(...).kinds``), empty for clean training."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown alarm kind(s) {sorted(unknown)}; known: "
                         f"{', '.join(KINDS)}")
    if not history or any(ROBUST not in h for h in history):
        return None
    found = (catastrophic_overfitting(history) if CATASTROPHIC in kinds else None)
    if found is None and ROBUST_OVERFITTING in kinds:
        found = robust_overfitting(history)
    return found


class EpochHistory:
    """Per-epoch rows assembled from metrics that arrive one at a time; a run
    with a validation split (``validation=True``) reports ``VAL_KEYS`` too."""

    KEYS = ("train_loss", "train_acc", "test_clean_acc", "test_robust_acc", "lr",
            "epoch_seconds")  # fmt: skip
    VAL_KEYS = ("val_clean_acc", "val_robust_acc")

    def __init__(self, validation: bool = True) -> None:
        self.keys = self.KEYS + (self.VAL_KEYS if validation else ())
        self._rows: dict[int, dict[str, float]] = {}

    def add(self, name: str, epoch: int, value: float) -> bool:
        """Keep one value; True when it completes the row of ``epoch``."""
        if name not in self.keys:
            return False
        row = self._rows.setdefault(epoch, {})
        row[name] = value
        return len(row) == len(self.keys)

    def rows(self) -> list[dict[str, float]]:
        """Complete rows, epoch 1 first."""
        return [self._rows[e] for e in sorted(self._rows)
                if len(self._rows[e]) == len(self.keys)]

    def last_complete(self) -> int:
        done = [e for e, row in self._rows.items() if len(row) == len(self.keys)]
        return max(done, default=0)
