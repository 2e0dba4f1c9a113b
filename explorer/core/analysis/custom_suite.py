"""A custom suite: chosen attacks at chosen budgets.

Every registered attack whose parameters include an ``eps`` budget can take
part (fgsm, pgd, mim, apgd-ce, apgd-dlr, square, spsa, uniform-noise, …);
attacks measured otherwise (deepfool, cw, jsma, rotation, gaussian-noise's
sigma) cannot, since "robust at budget e" needs a budget.

Per budget, each chosen attack runs on its own on all correctly classified
points, so ``pgd@0.1`` is PGD's own robust accuracy; a point is robust at a
budget only if it survives every chosen attack there, and at every smaller
budget too (an adversarial example found within a smaller budget also lies
within the larger one).

Defaults a newcomer can use without reading the papers: PGD and BIM take
2.5·eps/steps per step (Madry et al. 2018), MIM eps/steps (Dong et al. 2018),
APGD 20 iterations (see :mod:`explorer.core.analysis.suites`); everything else
keeps its registered default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from explorer.core import attacks as registry
from explorer.core.analysis.suites import NORMS, STANDARD_STEPS, PlannedAttack
from explorer.core.params import ParamError, validate

_STEP_FACTOR = {"pgd": 2.5, "bim": 2.5, "mim": 1.0}  # alpha = factor·eps/steps
_DEFAULT_STEPS = {"apgd-ce": STANDARD_STEPS, "apgd-dlr": STANDARD_STEPS}


def budget_text(eps: float) -> str:
    """``0.1`` stays 0.1; a long decimal that is k/255 reads ``8/255``."""
    short = f"{eps:g}"
    k = eps * 255
    if len(short) > 6 and abs(k - round(k)) < 1e-6:
        return f"{round(k)}/255"
    return short


def robust_key(eps: float) -> str:
    """Metric name of the robust accuracy at one budget."""
    return f"robust@{budget_text(eps)}"


def parse_budgets(text: str) -> list[float]:
    """``"0.05, 0.1, 8/255"`` → numbers (commas or spaces between them)."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    if not parts:
        raise ParamError("budgets: give at least one budget, e.g. 0.05, 0.1, 8/255")
    out = []
    for part in parts:
        try:
            out.append(float(Fraction(part)) if "/" in part else float(part))
        except (ValueError, ZeroDivisionError):
            raise ParamError(f"budgets: {part!r} is not a number "
                             "(write 0.1 or 8/255)") from None
    return out


def eps_attacks() -> list[str]:
    """Registered attacks that take an ``eps`` budget, in registry order."""
    return [n for n in registry.names()
            if any(p.name == "eps" for p in registry.spec(n))]


def _check_attack(name: str, norm: str) -> dict[str, Any]:
    if name not in registry.names():
        raise ParamError(f"unknown attack {name!r} (choose from "
                         f"{', '.join(eps_attacks())})")
    spec = {p.name: p for p in registry.spec(name)}
    if "eps" not in spec:
        raise ParamError(f"attack {name!r} has no eps budget, so it cannot be part"
                         f" of a custom suite (choose from {', '.join(eps_attacks())})")
    if "norm" in spec:
        if norm not in spec["norm"].choices:
            raise ParamError(f"attack {name!r} has no {norm} version (norms: "
                             f"{', '.join(spec['norm'].choices)})")
        return {"norm": norm}
    if norm != "linf":
        raise ParamError(f"attack {name!r} has no {norm} version (l-inf only)")
    return {}


def _stage_params(name: str, eps: float, base: dict[str, Any],
                  shared: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    spec = registry.spec(name)
    has = {p.name for p in spec}
    params = {**base, "eps": eps, **{k: v for k, v in shared.items() if k in has},
              **own}
    if "steps" in has and "steps" not in params and name in _DEFAULT_STEPS:
        params["steps"] = _DEFAULT_STEPS[name]
    if name in _STEP_FACTOR and "alpha" not in params:
        steps = params.get("steps", next(p.default for p in spec if p.name == "steps"))
        if isinstance(steps, int | float) and steps > 0:  # else validate says why
            params["alpha"] = _STEP_FACTOR[name] * eps / steps
    try:
        return validate(spec, params)
    except ParamError as exc:
        raise ParamError(f"{name}: {exc}") from None


def custom_plan(
    attacks: Sequence[str],
    budgets: Sequence[float],
    norm: str = "linf",
    params: Mapping[str, dict] | None = None,
    *,
    steps: int | None = None,
    n_targets: int | None = None,
    queries: int | None = None,
) -> list[PlannedAttack]:
    """One stage per (budget, attack), budgets ascending, attacks in the
    given order (repeats dropped). ``params`` {attack: {param: value}}
    overrides the defaults; ``steps``, ``n_targets`` and ``queries`` apply to
    every chosen attack that has that parameter."""
    if norm not in NORMS:
        raise ParamError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    names = list(dict.fromkeys(str(a).strip() for a in attacks))
    if not names:
        raise ParamError("choose at least one attack for the custom suite")
    if len(budgets) == 0:
        raise ParamError("give at least one budget for the custom suite")
    top = 1.0 if norm == "linf" else float("inf")
    values: dict[str, float] = {}
    for value in budgets:
        eps = float(value)
        if not 0 < eps <= top:  # NaN fails here too
            bound = "in (0, 1] (pixel units)" if norm == "linf" else "above 0"
            raise ParamError(f"budget must be {bound} for {norm}, got {eps:g}")
        values.setdefault(budget_text(eps), eps)
    params = dict(params or {})
    unused = sorted(set(params) - set(names))
    if unused:
        raise ParamError(f"parameters given for {unused[0]!r}, which is not among "
                         f"the chosen attacks ({', '.join(names)})")
    base = {name: _check_attack(name, norm) for name in names}
    shared = {k: v for k, v in (("steps", steps), ("n_targets", n_targets),
                                ("queries", queries)) if v is not None}
    plan = []
    for eps in sorted(values.values()):
        for name in names:
            stage = _stage_params(name, eps, base[name], shared,
                                  params.get(name, {}))
            plan.append(PlannedAttack(f"{name}@{budget_text(eps)}", name, norm, stage))
    return plan


def plan_budgets(plan: Sequence[PlannedAttack]) -> list[float]:
    """The plan's budgets, ascending."""
    return sorted({stage.eps for stage in plan})


def custom_suite_plan(attacks: Sequence[str] = (), budgets: Sequence[float] = (), *,
                      norm: str = "linf", attack_params: Mapping | None = None,
                      steps: int | None = None, n_targets: int | None = None,
                      queries: int | None = None, eps_l2: float | None = None,
                      eps_l1: float | None = None) -> list[PlannedAttack]:
    """:func:`custom_plan` from ``run_suite``'s keywords (its suite options)."""
    if eps_l2 is not None or eps_l1 is not None:
        raise ParamError("eps_l2 and eps_l1 belong to the multi suite; a custom "
                         "suite takes its budgets from budgets=")
    return custom_plan(attacks, budgets, norm, attack_params, steps=steps,
                       n_targets=n_targets, queries=queries)


def budget_curve(results: Mapping[str, Any]) -> dict[str, Any]:
    """A custom suite's accuracy-vs-eps curve from its results: clean accuracy
    at 0, then the robust accuracy at each budget."""
    return {"eps": [0.0, *results["budgets"]],
            "robust_acc": [results["clean_acc"], *results["per_budget"].values()],
            "attack": "custom suite", "steps": None}
