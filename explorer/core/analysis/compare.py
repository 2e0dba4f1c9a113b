"""Evaluate several models on the same images, one after another, as one job.

For each model, in order: the attack suite (:func:`run_suite`, AutoAttack's
cascade), an accuracy-vs-eps sweep (APGD-CE, step-size free, so one setting
fits every budget), the gradient-masking checks on the first ``check_n``
images, and adversarial examples of the first ``examples`` images under the
suite's first attack. Every event names its model by index (``Metric.step``,
``Snapshot.step``), so a table can fill in cell by cell while the job runs.

Events per model ``i``:

- ``Metric(name, value, step=i)`` for ``clean_acc``, each attack label of the
  suite (robust accuracy after that stage), ``robust_acc`` and, for
  ``multi``, ``union_acc`` and ``avg_acc``;
- ``Snapshot(i, n_models, {"eps", "robust_acc"}, "sweep")`` after each
  budget (the first point is eps 0 = clean accuracy);
- ``Snapshot(i, n_models, {"key", "name", "passed", "value_text",
  "explanation"}, "checks")`` once the masking checks are done;
- ``Snapshot(i, n_models, {"x", "x_adv", "y", "pred_clean", "pred_adv"},
  "examples")``;
- ``Progress`` over the whole job, ``Log`` lines prefixed with the model.

``Done``: ``models`` (one JSON-friendly dict per model: the suite's numbers
without per-sample flags, ``sweep``, ``checks`` as dicts), ``examples``
(images as arrays), ``suite``, ``eps``, ``n``, ``classes``, ``config``,
``seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explorer.core import accel
from explorer.core import device as devices
from explorer.core import models as model_files
from explorer.core.analysis.cascade import (
    gradient_options,
    run_suite,
    with_gradient_options,
)
from explorer.core.analysis.compare_stages import SWEEP_ATTACK, example_table, rescaled
from explorer.core.analysis.compare_stages import checks as masking_stage
from explorer.core.analysis.compare_stages import examples as example_stage
from explorer.core.analysis.compare_stages import sweep as sweep_stage
from explorer.core.analysis.custom_suite import budget_curve, custom_suite_plan
from explorer.core.analysis.sharding import merge_curve, merge_suite
from explorer.core.analysis.suites import CUSTOM, suite_plan
from explorer.core.data.batching import batches
from explorer.core.distributed import SINGLE, World
from explorer.core.jobs import (
    CancelToken,
    Done,
    Event,
    Log,
    Metric,
    Progress,
    Snapshot,
)
from explorer.core.params import ParamError

# Shares of one model's progress: the suite dominates, the rest is smaller.
_WEIGHTS = {"suite": 0.6, "sweep": 0.2, "checks": 0.15, "examples": 0.05}
ModelSource = nn.Module | Callable[[], nn.Module]


def default_sweep(eps: float) -> list[float]:
    """Budgets around ``eps``: a quarter, half, itself, 1.5× and 2× (≤ 1)."""
    return [e for e in (eps / 4, eps / 2, eps, 1.5 * eps, 2 * eps) if 0 < e <= 1]


def load_for_data(name: str, source: ModelSource, info: Any,
                  device: torch.device | str | None) -> nn.Module:
    """Load (when given a loader), check against the data (``info``; None
    skips the check), move to ``device`` (None: where it is). Errors name the
    model."""
    try:
        model = source if isinstance(source, nn.Module) else source()
    except (OSError, ValueError) as exc:
        raise model_files.ModelError(f"model {name!r} could not be loaded: "
                                     f"{exc}") from exc
    if info is not None:
        try:
            model_files.check_compatible(model, info)
        except model_files.ModelError as exc:
            raise model_files.ModelError(f"model {name!r} does not fit the data: "
                                         f"{exc}") from None
    if device is None:  # stay where it is
        device = devices.device_of(model)
    return accel.place(model, device)


def _spans(parts: dict[str, bool], i: int, n_models: int
           ) -> dict[str, tuple[float, float]]:
    """Model ``i``'s parts as fractions of the whole job, by their weights."""
    weight = sum(_WEIGHTS[k] for k, on in parts.items() if on)
    out, lo = {}, float(i)
    for part, on in parts.items():
        hi = lo + (_WEIGHTS[part] / weight if on else 0.0)
        out[part] = (lo / n_models, hi / n_models)
        lo = hi
    return out


def compare_job(
    models: Mapping[str, ModelSource],
    x: Tensor,
    y: Tensor,
    suite: str = "quick",
    eps: float = 0.1,
    *,
    attacks: Sequence[str] = (),
    budgets: Sequence[float] = (),
    sweep_eps: Sequence[float] | None = None,
    sweep_steps: int = 10,
    checks: bool = True,
    check_n: int = 32,
    check_options: Mapping[str, Any] | None = None,
    examples: int = 8,
    suite_options: Mapping[str, Any] | None = None,
    info: Any = None,
    classes: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
    batch_size: int = 500,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    token: CancelToken | None = None,
    keep_robust: bool = False,
    world: World = SINGLE,
) -> Iterator[Event]:
    """Compare ``models`` (name → module, or a loader called in the job) on
    images ``x`` (N×C×H×W in [0, 1]) and labels ``y``; see the module doc.

    ``sweep_eps`` None sweeps :func:`default_sweep` (eps), an empty sequence
    skips the sweep; ``info`` (a data set's info) checks each model against
    the data before any attack runs; ``suite_options`` go to ``run_suite``
    (steps, queries, n_targets, eps_l2, eps_l1, and ``eot`` and ``bpda``,
    which reach the sweep and the examples too: every gradient attack but the
    masking checks', which diagnose the plain attacks); ``check_options`` to
    ``masking_checks`` (steps, square_queries, spsa_images, tolerance).

    ``suite="custom"`` evaluates ``attacks`` at ``budgets`` (suite options
    may add norm, attack_params, steps, queries, n_targets); with
    ``sweep_eps`` None its curve is the robust accuracy at each budget, no
    separate sweep runs. ``eps`` still sets the masking checks' budget.

    Every attack draws image ``i``'s random numbers from (seed, ``i``), so
    the batch size does not change any image's result. ``keep_robust``
    keeps each model's per-image ``robust`` flags (True: survived the suite).
    ``world`` (torchrun's processes, :mod:`explorer.core.distributed`)
    splits the suite and the sweep over the ranks, each on its contiguous
    shard of ``x``; the results are gathered and merged on every rank
    (:mod:`explorer.core.analysis.sharding`), equal to one process's. The
    masking checks and the examples are not split: rank 0 computes them
    alone on the same first images as one process (the others skip them).
    """
    token = token or CancelToken()
    if not models:
        raise ParamError("choose at least one model to evaluate")
    if x.dim() != 4 or len(x) == 0 or len(x) != len(y):
        raise ParamError(f"x must be a non-empty batch N×C×H×W with one label each;"
                         f" got x {tuple(x.shape)} and y {tuple(y.shape)}")
    suite_options = dict(suite_options or {})
    extra = gradient_options(suite_options.pop("eot", 1),
                             suite_options.pop("bpda", "off"))
    custom = suite == CUSTOM
    if custom:  # bad settings fail first
        suite_options.update(attacks=list(attacks), budgets=list(budgets))
        stages = custom_suite_plan(**suite_options)
        shown_stage = next(s for s in stages if s.eps == stages[-1].eps)
    else:
        shown_stage = suite_plan(suite, eps, **suite_options)["linf"][0]
    shown_stage = with_gradient_options([shown_stage], extra)[0]
    if sweep_eps is None:
        sweep = [] if custom else default_sweep(eps)
    else:
        sweep = [float(e) for e in sweep_eps]
    check_n = min(check_n, len(x)) if checks and 0 < eps < 0.5 else 0
    started = time.perf_counter()
    loaded = {name: load_for_data(name, source, info, device)
              for name, source in models.items()}
    y = torch.as_tensor(y).long()
    parts = {"suite": True, "sweep": bool(sweep), "checks": check_n > 0,
             "examples": examples > 0}
    span = world.shard(len(x))
    if not len(span):
        raise ParamError(f"{len(x)} images cannot be split over {world.size} "
                         "processes: give each at least one")
    xs, ys, first = x[span.start:span.stop], y[span.start:span.stop], span.start
    ids = torch.arange(span.start, span.stop)
    split = world.distributed
    total = 1000 * len(loaded)
    per_model: list[dict[str, Any]] = []
    shown: dict[str, dict[str, np.ndarray]] = {}
    for i, (name, model) in enumerate(loaded.items()):
        token.check()
        spans = _spans(parts, i, len(loaded))
        entry: dict[str, Any] = {"model": name}
        a, b = spans["suite"]
        for event in run_suite(model, xs, ys, suite, eps, batch_size=batch_size,
                               seed=seed, token=token, ids=ids, **suite_options,
                               **extra):
            if isinstance(event, Metric) and not split:  # a shard's: merged below
                yield Metric(event.name, event.value, step=i)
            elif isinstance(event, Progress):
                yield rescaled(event, a, b, total, name)
            elif isinstance(event, Log):
                yield Log(f"{name}: {event.message}", event.level)
            elif isinstance(event, Done):
                entry.update(event.results)
        if split:
            entry.update(merge_suite(world.gather(entry)))
            yield from _merged_metrics(entry, i)
        if not keep_robust:
            entry.pop("robust", None)
        if custom and sweep_eps is None:
            entry["sweep"] = budget_curve(entry)
            yield Snapshot(i, len(loaded), {k: np.array(entry["sweep"][k])
                                            for k in ("eps", "robust_acc")}, "sweep")
        if sweep:
            a, b = spans["sweep"]
            stage = sweep_stage(model, xs, ys, sweep, sweep_steps, entry["clean_acc"],
                                i, len(loaded), (a, b, total, name), batch_size,
                                seed, token, extra, first)
            if split:
                curve = yield from _progress_only(stage)
                sizes, points = zip(*world.gather((len(xs), curve["robust_acc"][1:])),
                                    strict=True)
                curve["robust_acc"] = [entry["clean_acc"], *merge_curve(points, sizes)]
                yield Snapshot(i, len(loaded), {k: np.array(curve[k]) for k in (
                    "eps", "robust_acc")}, "sweep")
                entry["sweep"] = curve
            else:
                entry["sweep"] = yield from stage
        if check_n and world.main:
            a, b = spans["checks"]
            entry["checks"] = yield from masking_stage(model, x[:check_n], y[:check_n],
                                                 eps, check_options, i, len(loaded),
                                                 (a, b, total, name), seed, token)
        if examples > 0 and world.main:
            token.check()
            shown[name] = example_stage(model, x[:examples], y[:examples],
                                    shown_stage, seed)
            yield Snapshot(i, len(loaded), shown[name], "examples")
        yield Progress(round(total * (i + 1) / len(loaded)), total, f"{name}: done")
        per_model.append(entry)
    yield Done({
        "models": per_model, "suite": suite, "eps": float(eps), "n": len(x),
        "sweep_attack": SWEEP_ATTACK if sweep else None, "sweep_steps": sweep_steps,
        **({"attacks": per_model[0]["attacks"], "budgets": per_model[0]["budgets"]}
           if custom else {}),
        "check_n": check_n, "examples": example_table(shown),
        "classes": list(classes), "config": dict(config or {}),
        "seconds": time.perf_counter() - started,
    })


def _merged_metrics(entry: dict[str, Any], i: int) -> Iterator[Event]:
    """The suite's metrics, as run_suite yields them, from merged results."""
    yield Metric("clean_acc", entry["clean_acc"], step=i)
    for label, value in entry.get("per_attack", {}).items():
        yield Metric(label, value, step=i)
    for key in ("union_acc", "avg_acc", "robust_acc"):
        if key in entry:
            yield Metric(key, entry[key], step=i)


def _progress_only(stage):
    """A stage's events but its Snapshots (a shard's partial curve); its
    return value."""
    try:
        while True:
            event = next(stage)
            if not isinstance(event, Snapshot):
                yield event
    except StopIteration as stop:
        return stop.value


def compare_dataset_job(models: Mapping[str, ModelSource], dataset: Any,
                        n: int | None = None, *, token: CancelToken | None = None,
                        **kwargs: Any) -> Iterator[Event]:
    """:func:`compare_job` on the first ``n`` images of ``dataset`` (read in
    the job); its ``info`` and ``classes`` are passed on."""
    if n is not None and n < 1:
        raise ParamError(f"the number of images must be at least 1, got {n}")
    token = token or CancelToken()
    yield Progress(0, 1, "reading images")
    xs, ys = zip(*batches(dataset, 1000, n), strict=True)
    token.check()
    kwargs.setdefault("info", getattr(dataset, "info", None))
    kwargs.setdefault("classes", list(getattr(dataset, "classes", ())))
    yield from compare_job(models, torch.cat(xs),
                           torch.cat([torch.as_tensor(y) for y in ys]),
                           token=token, **kwargs)
