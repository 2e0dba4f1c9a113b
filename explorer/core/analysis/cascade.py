"""Robust accuracy by a cascade of attacks, as a job (AutoAttack's scheme).

Each stage attacks only the points still robust: correctly classified and not
yet broken by an earlier stage. A point counts as broken only if its
adversarial example is misclassified *and* inside the budget and the pixel
box (checked here again, whatever the attack promises). Stages work in
batches of still-robust points, so later, cheaper-to-survive stages run on
full batches.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from explorer.core import attacks
from explorer.core.analysis.custom_suite import (
    budget_text,
    custom_suite_plan,
    robust_key,
)
from explorer.core.analysis.suites import CUSTOM, PlannedAttack, suite_plan
from explorer.core.attacks.eot import GRADIENT_PARAMS, check_options
from explorer.core.attacks.threat import make_threat
from explorer.core.device import device_of
from explorer.core.jobs import CancelToken, Done, Event, Log, Metric, Progress

_SLACK = 1e-5  # float tolerance of the budget check, relative to eps


def _device(model: nn.Module, x: Tensor) -> torch.device:
    return device_of(model, fallback=x.device)


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    return torch.cat([model(x[i:i + batch_size]).argmax(1)
                      for i in range(0, x.shape[0], batch_size)])


def _share(mask: Tensor) -> float:
    """Fraction of True in ``mask`` (NaN when empty), the same way everywhere."""
    return int(mask.sum()) / mask.numel() if mask.numel() else float("nan")


def inside_budget(stage: PlannedAttack, x_adv: Tensor, x: Tensor) -> Tensor:
    """Per sample: finite, in [0, 1] and within the stage's budget."""
    size = make_threat(stage.norm, stage.eps).size(x_adv - x)
    flat = x_adv.flatten(1)
    return (torch.isfinite(flat).all(1) & (flat >= 0).all(1) & (flat <= 1).all(1)
            & (size <= stage.eps * (1 + _SLACK) + _SLACK))


def _ids(ids: Tensor | None, n: int, device: torch.device) -> Tensor:
    if ids is None:
        return torch.arange(n, device=device)
    ids = torch.as_tensor(ids, device=device).long().flatten()
    if len(ids) != n:
        raise ValueError(f"ids must give one index per image: {len(ids)} for {n}")
    return ids


def gradient_options(eot: int = 1, bpda: str = "off") -> dict[str, Any]:
    """The EOT/BPDA settings that differ from off, validated (ParamError
    naming ``eot`` or ``bpda``)."""
    values = check_options(eot, bpda)
    return {p.name: values[p.name] for p in GRADIENT_PARAMS
            if values[p.name] != p.default}


def with_gradient_options(stages: Sequence[PlannedAttack],
                          options: Mapping[str, Any]) -> list[PlannedAttack]:
    """``stages`` with ``options`` (:func:`gradient_options`) set on every
    stage whose attack takes them: the gradient attacks, not Square."""
    out = []
    for stage in stages:
        takes = {p.name for p in attacks.spec(stage.name)}
        extra = {k: v for k, v in options.items() if k in takes}
        out.append(dataclasses.replace(stage, params={**stage.params, **extra})
                   if extra else stage)
    return out


def cascade(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    robust: Tensor,
    stages: list[PlannedAttack],
    *,
    batch_size: int,
    seed: int | None,
    token: CancelToken,
    progress: tuple[int, int] = (0, 1),
    ids: Tensor | None = None,
) -> Generator[Event, None, dict[str, Any]]:
    """Run ``stages`` in order, clearing ``robust`` (updated in place) where a
    stage breaks a point. Yields Progress, a Metric per stage and Logs;
    returns per-stage robust accuracy, points attacked and seconds.
    ``ids`` (the points' global indices) seed each point's own random draws,
    so the batches the points fall in do not matter."""
    n = x.shape[0]
    first, total = progress
    out: dict[str, dict[str, Any]] = {"per_attack": {}, "attacked": {}, "seconds": {}}
    for i, stage in enumerate(stages):
        started = time.perf_counter()
        atk = attacks.create(stage.name, model, seed=None if seed is None else seed + i,
                             **stage.params)
        todo = robust.nonzero(as_tuple=True)[0]
        out["attacked"][stage.label] = int(todo.numel())
        broken_here, outside = 0, 0
        for lo in range(0, todo.numel(), batch_size):
            token.check()
            idx = todo[lo:lo + batch_size]
            x_adv = atk(x[idx], y[idx], ids=None if ids is None else ids[idx])
            with torch.no_grad():
                fooled = model(x_adv).argmax(1) != y[idx]
            valid = inside_budget(stage, x_adv, x[idx])
            outside += int((fooled & ~valid).sum())
            fooled &= valid
            robust[idx[fooled]] = False
            broken_here += int(fooled.sum())
            done = lo + idx.numel()
            yield Progress((first + i) * n + done * n // todo.numel(), total * n,
                           stage.label)
        acc = _share(robust)
        out["per_attack"][stage.label] = acc
        out["seconds"][stage.label] = time.perf_counter() - started
        yield Metric(stage.label, acc, step=i)
        yield Log(f"{stage.label}: attacked {todo.numel()}, broke {broken_here}, "
                  f"robust accuracy {100 * acc:.2f}%")
        if outside:
            yield Log(f"{stage.label}: {outside} adversarial examples outside the "
                      "budget or [0, 1] were not counted", "warning")
    return out


def run_suite(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    suite: str = "standard",
    eps: float = 0.1,
    *,
    eps_l2: float | None = None,
    eps_l1: float | None = None,
    steps: int | None = None,
    n_targets: int | None = None,
    queries: int | None = None,
    attacks: Sequence[str] = (),
    budgets: Sequence[float] = (),
    norm: str = "linf",
    attack_params: Mapping[str, dict] | None = None,
    batch_size: int = 500,
    seed: int | None = 0,
    token: CancelToken | None = None,
    eot: int = 1,
    bpda: str = "off",
    ids: Tensor | None = None,
) -> Iterator[Event]:
    """Evaluate ``model`` on images ``x`` (N×C×H×W in [0, 1]) with a suite.

    ``eot`` and ``bpda`` go to every gradient stage (APGD, PGD, ...; see
    :mod:`explorer.core.attacks.eot`) and, when not 1 and off, into the
    results. A point still counts as broken by one forward pass at its
    adversarial example, as for any model.

    ``Done.results``: ``clean_acc``, ``robust_acc`` (after the whole suite;
    for ``multi`` the union over threat models), ``per_attack`` {label:
    robust accuracy after it}, ``attacked`` {label: points it attacked},
    ``seconds`` {label: time}, ``robust`` (per-sample bools), ``eps``
    {norm: budget}, ``n``, ``suite``, ``total_seconds``; for ``multi`` also
    ``per_threat`` {norm: accuracy}, ``union_acc`` and ``avg_acc``.

    ``suite="custom"`` runs ``attacks`` at ``budgets`` (``eps`` is not used;
    see :mod:`explorer.core.analysis.custom_suite`): ``per_attack`` then holds
    each attack's own robust accuracy, ``per_budget`` {budget text: robust
    accuracy against all chosen attacks}, ``robust_acc`` is the one at the
    largest budget, ``budgets``, ``attacks`` and ``norm`` say what ran.

    ``ids``: the images' global indices (default 0..N-1); every attack draws
    each image's random numbers from (seed, its index), so a shard of a
    larger set (``x[a:b]`` with ``ids`` a..b-1) gets the same per-image
    results as the whole set, whatever the batch size.
    """
    token = token or CancelToken()
    extra = gradient_options(eot, bpda)
    if suite == CUSTOM:
        stages = custom_suite_plan(attacks, budgets, norm=norm,
                                   attack_params=attack_params, steps=steps,
                                   n_targets=n_targets, queries=queries,
                                   eps_l2=eps_l2, eps_l1=eps_l1)
        yield from _run_custom(model, x, y, with_gradient_options(stages, extra),
                               batch_size, seed, token, extra, ids)
        return
    options = {k: v for k, v in (("n_targets", n_targets), ("queries", queries))
               if v is not None}
    plan = suite_plan(suite, eps, eps_l2=eps_l2, eps_l1=eps_l1, steps=steps,
                      **options)
    plan = {norm: with_gradient_options(stages, extra)
            for norm, stages in plan.items()}
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    device = _device(model, x)
    x, y = x.detach().to(device), y.to(device)
    n = x.shape[0]
    ids = _ids(ids, n, device)
    was_training = model.training
    model.eval()
    try:
        correct = _predict(model, x, batch_size) == y
        clean_acc = _share(correct)
        yield Metric("clean_acc", clean_acc)
        n_stages = sum(len(stages) for stages in plan.values())
        results: dict[str, Any] = {"per_attack": {}, "attacked": {}, "seconds": {}}
        per_threat: dict[str, float] = {}
        union = correct.clone()
        first = 0
        for norm, stages in plan.items():
            robust = correct.clone()
            part = yield from cascade(model, x, y, robust, stages,
                                      batch_size=batch_size, seed=seed, token=token,
                                      progress=(first, n_stages), ids=ids)
            first += len(stages)
            for key in results:
                results[key].update(part[key])
            per_threat[norm] = _share(robust)
            union &= robust
    finally:
        model.train(was_training)
    robust_acc = _share(union)
    results.update(
        suite=suite, n=n, clean_acc=clean_acc, robust_acc=robust_acc,
        robust=union.cpu().tolist(),
        eps={norm: stages[0].eps for norm, stages in plan.items()},
        total_seconds=time.perf_counter() - started, **extra,
    )
    if suite == "multi":
        results.update(per_threat=per_threat, union_acc=robust_acc,
                       avg_acc=sum(per_threat.values()) / len(per_threat))
        yield Metric("union_acc", robust_acc)
        yield Metric("avg_acc", results["avg_acc"])
    yield Metric("robust_acc", robust_acc)
    yield Done(results)


def _run_custom(model: nn.Module, x: Tensor, y: Tensor, stages: list[PlannedAttack],
                batch_size: int, seed: int | None, token: CancelToken,
                extra: Mapping[str, Any], ids: Tensor | None = None
                ) -> Iterator[Event]:
    """Each stage on all correct points; per budget the points surviving all."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    device = _device(model, x)
    x, y = x.detach().to(device), y.to(device)
    ids = _ids(ids, x.shape[0], device)
    was_training = model.training
    model.eval()
    results: dict[str, Any] = {"per_attack": {}, "attacked": {}, "seconds": {}}
    per_budget: dict[str, float] = {}
    try:
        correct = _predict(model, x, batch_size) == y
        clean_acc = _share(correct)
        yield Metric("clean_acc", clean_acc)
        survivors = correct.clone()  # robust at every budget so far
        for k, stage in enumerate(stages):
            robust = correct.clone()
            part = yield from cascade(model, x, y, robust, [stage],
                                      batch_size=batch_size,
                                      seed=None if seed is None else seed + k,
                                      token=token, progress=(k, len(stages)),
                                      ids=ids)
            for key in results:
                results[key].update(part[key])
            survivors &= robust
            if k + 1 == len(stages) or stages[k + 1].eps != stage.eps:
                acc = per_budget[budget_text(stage.eps)] = _share(survivors)
                yield Metric(robust_key(stage.eps), acc)
                yield Log(f"budget {budget_text(stage.eps)}: robust accuracy "
                          f"{100 * acc:.2f}% against all chosen attacks")
    finally:
        model.train(was_training)
    budgets = sorted({stage.eps for stage in stages})
    results.update(
        suite=CUSTOM, n=x.shape[0], clean_acc=clean_acc,
        robust_acc=_share(survivors), robust=survivors.cpu().tolist(),
        eps={stages[0].norm: budgets[-1]}, budgets=budgets,
        per_budget=per_budget, attacks=list(dict.fromkeys(s.name for s in stages)),
        norm=stages[0].norm, total_seconds=time.perf_counter() - started, **extra)
    yield Metric("robust_acc", results["robust_acc"])
    yield Done(results)
