"""Which overfitting alarms fit a training run, read from its method.

Robust overfitting (Rice et al. 2020) is a failure of adversarial training,
and catastrophic overfitting (Wong et al. 2020) one of single-step
adversarial training. A method says how it crafts its training examples
(:meth:`Defense.training_attack_steps`: None for clean images, else the
attack's steps per update with the run's parameters), so PGD-AT with
``steps`` 1 is single-step and Smooth activations on ``base`` standard is
clean training. The reason is said in words for the Training page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explorer.core.defenses.alarms import CATASTROPHIC, ROBUST_OVERFITTING
from explorer.core.defenses.registry import REGISTRY


@dataclass(frozen=True)
class AlarmScope:
    """The alarm kinds a run can raise, and why (one or two sentences); for
    clean training ``headline`` says in one line that none is watched."""

    kinds: tuple[str, ...]
    reason: str
    headline: str = ""


def _steps_text(steps: int) -> str:
    return f"{steps} attack step{'s' if steps != 1 else ''} per update"


def scope(defense: str, params: Mapping[str, Any]) -> AlarmScope:
    """The alarms of a run of method ``defense`` with ``params`` (a NoiLIn
    wrapper changes the labels, not the attack: the inner method decides).
    A method this version does not know (a run stored by a newer one) gets
    both alarms, as before methods declared their attack."""
    cls = REGISTRY.get(defense)
    if cls is None:
        return AlarmScope((CATASTROPHIC, ROBUST_OVERFITTING),
                          f"Both overfitting alarms are watched: this version "
                          f"does not know how {defense!r} trains.")
    steps = cls.training_attack_steps(params)
    if steps is None:
        headline = (f"No overfitting alarm for {cls.title}: it trains on no "
                    "adversarial examples.")
        return AlarmScope((), (
            f"{headline} Robust and catastrophic overfitting are failures of "
            "adversarial training; on such a model robust accuracy simply "
            "falls as it fits the clean images."), headline)
    if steps == 1:
        return AlarmScope((CATASTROPHIC, ROBUST_OVERFITTING), (
            f"Shown because {cls.title} trains on single-step adversarial "
            f"examples ({_steps_text(steps)}): it can overfit catastrophically "
            "(Wong et al. 2020) and robustly (Rice et al. 2020)."))
    return AlarmScope((ROBUST_OVERFITTING,), (
        f"Shown because {cls.title} trains on adversarial examples "
        f"({_steps_text(steps)}): it can overfit robustly (Rice et al. 2020). "
        "Catastrophic overfitting belongs to single-step training and is not "
        "watched for."))
