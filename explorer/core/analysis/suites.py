"""Attack suites for reliable evaluation, after AutoAttack (Croce & Hein 2020).

- ``quick``: APGD-CE alone, 10 iterations, l-inf — a first look in seconds.
- ``standard``: APGD-CE, APGD-T (targeted DLR, 9 target classes), Square
  (5000 queries): AutoAttack's standard cascade without FAB-T, and APGD at
  20 iterations instead of 100 — the fast everyday cascade. On the built-in
  small CNNs 20 and 100 gave the same final robust accuracy (Square catches
  the rest). Its figures are not the ones to set beside RobustBench or a
  paper: that is ``autoattack``.
- ``autoattack``: AutoAttack's ``version="standard"`` (Croce & Hein 2020),
  l-inf: APGD-CE, APGD-T (9 target classes), FAB-T (9 target classes) and
  Square (5000 queries, p_init 0.8, p halved at fixed query counts), with
  the authors' settings — 100 iterations for APGD and FAB, one run per
  target, APGD's step-size schedule (:mod:`explorer.core.attacks.apgd`),
  FAB's α_max 0.1, η 1.05, β 0.9 (:mod:`explorer.core.attacks.fab`). The
  suite whose robust accuracy stands beside RobustBench and published
  figures (tests check it is never weaker than the authors' pyautoattack on
  the same images; bench/evaluate.py compares the two on 1000).
- ``multi``: the standard cascade once per threat model, l-inf, l2 and l1
  (Square has no l1 version: the l1 cascade is APGD-CE, APGD-T). ``eps`` is
  the l-inf budget; the l2 and l1 budgets default to 15·eps and 100·eps —
  1.5 and 10 at eps 0.1, the budgets of the multi-perturbation defenses for
  28×28 images — and can be set on their own.

Every number here is a keyword of :func:`suite_plan`, so a caller can trade
strength for time (the benchmark states which settings it used).

``custom``: any registered attacks that take an ``eps`` budget, at one or
more budgets, labelled ``pgd@0.1`` (:mod:`explorer.core.analysis.custom_suite`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from explorer.core.params import ParamError

SUITES = ("quick", "standard", "multi", "autoattack")
CUSTOM = "custom"  # attacks and budgets of the caller's choice (custom_suite.py)
NORMS = ("linf", "l2", "l1")
L2_PER_LINF = 15.0
L1_PER_LINF = 100.0
QUICK_STEPS = 10
STANDARD_STEPS = 20
AUTOATTACK_STEPS = 100  # APGD and FAB iterations in AutoAttack
AUTOATTACK_P_INIT = 0.8  # Square's initial share of pixels, l-inf


@dataclass(frozen=True)
class PlannedAttack:
    """One stage of a cascade: a registered attack and its parameters."""

    label: str  # key of ``per_attack``, e.g. "apgd-t" or "l2:square"
    name: str  # registry name
    norm: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def eps(self) -> float:
        return float(self.params["eps"])


def budgets(eps: float, eps_l2: float | None = None,
            eps_l1: float | None = None) -> dict[str, float]:
    """Per-norm budgets from the l-inf one (defaults scaled for 28×28 images)."""
    if not 0 <= eps <= 1:
        raise ParamError(f"eps must be in [0, 1] (the l-inf budget), got {eps:g}")
    out = {"linf": float(eps),
           "l2": L2_PER_LINF * eps if eps_l2 is None else float(eps_l2),
           "l1": L1_PER_LINF * eps if eps_l1 is None else float(eps_l1)}
    for norm, value in out.items():
        if value < 0:
            raise ParamError(f"eps_{norm} must be at least 0, got {value:g}")
    return out


def _cascade(norm: str, eps: float, prefix: str, *, steps: int, n_targets: int,
             queries: int) -> list[PlannedAttack]:
    common = {"eps": eps, "norm": norm, "steps": steps}
    plan = [
        PlannedAttack(prefix + "apgd-ce", "apgd-ce", norm, dict(common)),
        PlannedAttack(prefix + "apgd-t", "apgd-dlr", norm,
                      {**common, "n_target_classes": n_targets}),
    ]
    if norm != "l1" and queries > 0:
        plan.append(PlannedAttack(prefix + "square", "square", norm,
                                  {"eps": eps, "norm": norm, "queries": queries}))
    return plan


def _autoattack(eps: float, *, steps: int, n_targets: int,
                queries: int) -> list[PlannedAttack]:
    """AutoAttack's standard l-inf cascade (one run per target, no restarts)."""
    common = {"eps": eps, "norm": "linf", "steps": steps, "restarts": 1}
    plan = [
        PlannedAttack("apgd-ce", "apgd-ce", "linf", dict(common)),
        PlannedAttack("apgd-t", "apgd-dlr", "linf",
                      {**common, "n_target_classes": n_targets}),
        PlannedAttack("fab-t", "fab", "linf",
                      {**common, "n_target_classes": n_targets}),
    ]
    if queries > 0:
        plan.append(PlannedAttack("square", "square", "linf", {
            "eps": eps, "norm": "linf", "queries": queries,
            "p_init": AUTOATTACK_P_INIT, "rescale_schedule": False}))
    return plan


def suite_plan(
    suite: str,
    eps: float,
    *,
    eps_l2: float | None = None,
    eps_l1: float | None = None,
    steps: int | None = None,
    n_targets: int = 9,
    queries: int = 5000,
) -> dict[str, list[PlannedAttack]]:
    """The cascades of a suite, one per threat model (``norm -> stages``).

    ``steps`` defaults to 10 for ``quick``, 100 for ``autoattack`` and 20
    otherwise; ``queries`` = 0 leaves Square out.
    """
    if suite not in SUITES:
        raise ParamError(f"suite must be one of {', '.join(SUITES)}, got {suite!r}")
    for name, value, low in (("steps", steps, 1), ("n_targets", n_targets, 0),
                             ("queries", queries, 0)):
        if value is not None and value < low:
            raise ParamError(f"{name} must be at least {low}, got {value}")
    eps_by_norm = budgets(eps, eps_l2, eps_l1)
    if suite == "quick":
        params = {"eps": eps, "norm": "linf", "steps": steps or QUICK_STEPS}
        return {"linf": [PlannedAttack("apgd-ce", "apgd-ce", "linf", params)]}
    if suite == "autoattack":
        return {"linf": _autoattack(eps, steps=steps or AUTOATTACK_STEPS,
                                    n_targets=n_targets, queries=queries)}
    norms = ("linf",) if suite == "standard" else NORMS
    return {
        norm: _cascade(norm, eps_by_norm[norm], "" if suite == "standard" else
                       f"{norm}:", steps=steps or STANDARD_STEPS, n_targets=n_targets,
                       queries=queries)
        for norm in norms
    }
