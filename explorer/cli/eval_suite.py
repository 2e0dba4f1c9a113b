"""`explorer eval --suite quick|standard|multi|autoattack`: robust accuracy by
an attack cascade (:mod:`explorer.core.analysis.cascade`), for one or several
models; ``autoattack`` is AutoAttack's standard version, the figure to quote
beside RobustBench.
`--suite custom --attacks pgd,apgd-ce --budgets 0.05,8/255` runs chosen
attacks at chosen budgets instead. ``--eot K`` and ``--bpda MODE`` go to every
gradient stage (and the sweep), for randomized and non-differentiable models.

This is the Evaluate & Compare page's job (``compare_dataset_job``), one
workspace run for all the models: ``--report out.html`` writes the page's
report (results, accuracy-vs-eps curves, gradient-masking verdicts, example
images), so with a report the sweep, the checks and the examples run as on
the page; without one they run when asked (``--sweep``, ``--masking-checks``,
``--examples N``). One model prints its results object; several print
``{"models": [...]}``; with ``--per-image`` each model's ``robust`` lists
per image whether it survived the suite.

Under torchrun each rank attacks its contiguous shard of the images and the
per-image results are gathered (``compare_job(world=...)``); the masking
checks and the examples run on rank 0 alone, on the same first images as one
process, and rank 0 alone records the run, writes the report and prints.
"""

from __future__ import annotations

import argparse
import copy
from fractions import Fraction
from pathlib import Path
from typing import Any

from explorer.cli.common import UsageError, naming_flag

SUITES = ("quick", "standard", "multi", "autoattack", "custom")
DEFAULT_EPS = 0.1
EXAMPLES = 8  # adversarial examples per model in a report, as on the page
_SUITE_ONLY = ("eps", "eps_l2", "eps_l1", "steps", "n_targets", "queries",
               "attacks", "budgets", "eot", "bpda")
_GRADIENT = ("eot", "bpda")  # every gradient stage's, not the plan's
_CUSTOM_ONLY = ("attacks", "budgets")


def _budget(text: str) -> float:
    try:
        return float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _budgets(text: str) -> list[float]:
    from explorer.core.analysis.custom_suite import parse_budgets
    from explorer.core.params import ParamError

    try:
        return parse_budgets(text)
    except ParamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_suite_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", choices=SUITES,
                   help="attack cascade: quick (APGD-CE), standard (APGD-CE, "
                        "APGD-T, Square; 20 iterations, fast), multi (standard "
                        "for l-inf, l2, l1), autoattack (AutoAttack's standard "
                        "version: APGD-CE, APGD-T, FAB-T, Square, 100 "
                        "iterations; comparable to RobustBench and papers), "
                        "custom (--attacks at --budgets)")
    p.add_argument("--eps", type=_budget, help=f"l-inf budget, e.g. 0.1 or 8/255 "
                   f"(default {DEFAULT_EPS})")
    p.add_argument("--eps-l2", type=_budget, help="multi: l2 budget (default 15·eps)")
    p.add_argument("--eps-l1", type=_budget, help="multi: l1 budget (default 100·eps)")
    p.add_argument("--steps", type=int, help="APGD (and FAB) iterations (default "
                   "10 quick, 100 autoattack, 20 otherwise)")
    p.add_argument("--n-targets", type=int, help="APGD-T (and FAB-T) target "
                   "classes (default 9)")
    p.add_argument("--queries", type=int, help="Square queries (default 5000; 0 "
                   "leaves Square out)")
    p.add_argument("--attacks", type=_names, help="custom: attacks with an eps "
                   "budget, comma-separated, e.g. pgd,apgd-ce")
    p.add_argument("--budgets", type=_budgets, help="custom: l-inf budgets, "
                   "comma-separated, e.g. 0.05,0.1,8/255")
    p.add_argument("--eot", metavar="K", help="EOT: every gradient attack "
                   "averages its gradients over K forward passes, for randomized "
                   "models such as --wrap mixup-inference (default 1 = off)")
    p.add_argument("--bpda", metavar="MODE", help="BPDA: gradients through "
                   "modules marked non_differentiable (such as --wrap bit-depth) "
                   "taken as those of the identity or a blur: off, identity or "
                   "blur (default off)")
    p.add_argument("--seed", type=int, default=0, help="attack seed (default 0)")
    p.add_argument("--report", metavar="OUT.html",
                   help="also write the Evaluate page's HTML report (turns on the "
                        "sweep, the checks and the examples)")
    p.add_argument("--sweep", action="store_true",
                   help="accuracy-vs-eps curve (APGD-CE at 1/4..2x eps; with no "
                        "--suite, the quick suite runs too)")
    p.add_argument("--masking-checks", "--checks", dest="checks",
                   action="store_true",
                   help="the Evaluate page's gradient-masking checks on the first "
                        "32 images, verdicts in the result's 'checks' (with no "
                        "--suite, the quick suite runs too)")
    p.add_argument("--per-image", action="store_true",
                   help="also each image's flag in the result: 'robust' per "
                        "model, True where the image survived the suite")
    p.add_argument("--examples", type=int, default=None,
                   help=f"adversarial examples to keep per model (default 0; "
                        f"{EXAMPLES} with --report)")


def wants_suite(ns: argparse.Namespace) -> bool:
    """Whether this command goes beyond one model's clean accuracy. The
    masking checks and the sweep belong to a suite's comparison: asked for
    without --suite, they bring the quick one (they used to be ignored)."""
    if ns.suite is None and (ns.checks or ns.sweep or ns.examples):
        ns.suite = "quick"
    given = [f"--{k.replace('_', '-')}" for k in _SUITE_ONLY
             if getattr(ns, k) is not None]
    custom = [f"--{k}" for k in _CUSTOM_ONLY if getattr(ns, k) is not None]
    if custom and ns.suite != "custom":
        raise UsageError(f"{custom[0]} needs --suite custom")
    if ns.suite is None and ns.per_image:
        raise UsageError("--per-image needs --suite (quick, standard, multi, "
                         "autoattack or custom)")
    if ns.suite is None and given:
        raise UsageError(f"{given[0]} needs --suite (quick, standard, multi or "
                         "autoattack)")
    return ns.suite is not None or len(ns.models) > 1 or ns.report is not None


def _report_writer(path: str | None):
    if path is None:
        return None
    from explorer.core.analysis.report import write_html

    return write_html


def _settings(ns: argparse.Namespace) -> dict[str, Any]:
    """The suite keywords given on the command line, eps defaulted; --eot and
    --bpda validated (UsageError naming the flag)."""
    from explorer.core.attacks.eot import GRADIENT_PARAMS

    settings = {k: getattr(ns, k) for k in _SUITE_ONLY if getattr(ns, k) is not None}
    settings.setdefault("eps", DEFAULT_EPS)
    for param in GRADIENT_PARAMS:
        if param.name in settings:
            with naming_flag(param.flag):
                settings[param.name] = param.validate(settings[param.name])
    return settings


def _plan_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` without the gradient options (a plan has no place for them)."""
    return {k: v for k, v in settings.items() if k not in _GRADIENT}


def _compare(args, ns, dataset) -> dict[str, Any]:
    """The Evaluate page's compare job on the first N images, one run."""
    from explorer.cli.common import model_from_flags
    from explorer.cli.eval_ranks import check_split, recorded_run
    from explorer.cli.running import run_job
    from explorer.cli.wrap_flags import apply_wrapper
    from explorer.core import device as devices
    from explorer.core import distributed
    from explorer.core.analysis.compare import compare_dataset_job
    from explorer.core.jobs import CancelToken

    device = devices.pick(args.device)
    models, wrapper = {}, None
    for name in ns.models:
        model = model_from_flags(name, ns)
        model, wrapper = apply_wrapper(model, ns)
        models[name] = model
    settings = _settings(ns)
    eps = settings.pop("eps")
    attacks, budgets = settings.pop("attacks", ()), settings.pop("budgets", ())
    full = ns.report is not None
    examples = ns.examples if ns.examples is not None else (EXAMPLES if full else 0)
    config = {"models": {name: name for name in ns.models}, "data": ns.data,
              "split": ns.split, "n": ns.n, "suite": ns.suite, "eps": eps,
              "seed": ns.seed, "device": str(device), "sweep": full or ns.sweep,
              "checks": full or ns.checks, **settings,
              **({"attacks": list(attacks), "budgets": list(budgets)}
                 if ns.suite == "custom" else {})}
    if wrapper is not None:  # as `eval` and `attack` record it: name, all params
        config["wrapper"] = wrapper
    world = distributed.current()
    check_split(world, len(dataset) if ns.n is None else min(ns.n, len(dataset)))
    if world.distributed:
        config["world_size"] = world.size
    token = CancelToken()
    title = f"{ns.suite} suite: {', '.join(ns.models)}"
    with recorded_run(world, args.workspace, "eval", config, title=title) as run:
        events = compare_dataset_job(
            models, dataset, ns.n, suite=ns.suite, eps=eps, attacks=attacks,
            budgets=budgets, suite_options=settings,
            sweep_eps=None if (full or ns.sweep) else [], checks=full or ns.checks,
            examples=examples, config=config, batch_size=ns.batch_size,
            seed=ns.seed, device=device, token=token, keep_robust=ns.per_image,
            world=world)
        results = run_job(events, token, as_json=ns.json or not world.main,
                          recorder=run.record, title=title,
                          run_id=run.id if world.main else None,
                          snapshots=("sweep", "checks", "examples"))
        entries = [_summary(e) for e in results["models"]]
        # One model's figures also at the top, where `runs list` looks.
        run.summary = {**(entries[0] if len(entries) == 1 else {}), "models": entries}
    shared = {"data": ns.data, "split": ns.split, "device": str(device),
              "run_id": run.id, "world_size": world.size}
    from explorer.cli.common import guardrail_warnings

    results["models"] = [
        {**e, **shared, "warnings": guardrail_warnings(
            models[e["model"]], dataset, device, e.get("clean_acc"),
            eot=settings.get("eot", 1))}
        for e in results["models"]]
    return {**results, **shared}


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("model", "clean_acc", "robust_acc", "union_acc", "avg_acc", "per_attack")
    return {k: entry[k] for k in keep if k in entry}


def _one_model_ns(ns: argparse.Namespace, name: str) -> argparse.Namespace:
    one = copy.copy(ns)
    one.model = name
    return one


def suite_command(args: argparse.Namespace, ns: argparse.Namespace,
                  clean_only) -> int:
    """``clean_only(args, ns)`` is eval's own clean-accuracy run (a model
    list with --suite none)."""
    from explorer.cli.common import skipped_files
    from explorer.cli.running import print_result
    from explorer.core import device as devices

    if ns.n is not None and ns.n < 1:
        raise UsageError(f"--n must be at least 1, got {ns.n}")
    if ns.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {ns.batch_size}")
    write_html = _report_writer(ns.report)
    if ns.suite is not None:
        from explorer.core.analysis.custom_suite import custom_suite_plan
        from explorer.core.analysis.suites import suite_plan

        settings = _plan_settings(_settings(ns))  # bad settings fail first
        if ns.suite == "custom":
            custom_suite_plan(**{k: v for k, v in settings.items() if k != "eps"})
        else:
            suite_plan(ns.suite, **settings)
    devices.configure_threads(leave_for_ui=0)
    from explorer.cli.common import load_data

    if ns.suite is None:
        per_model = [clean_only(args, _one_model_ns(ns, name)) for name in ns.models]
        results = per_model[0] if len(per_model) == 1 else {
            "models": per_model, "data": ns.data, "split": ns.split}
        skipped = {}
    else:
        dataset = load_data(ns.data, ns.split, root=ns.root, shape=ns.input_shape)
        results = _compare(args, ns, dataset)
        per_model = results["models"]
        skipped = skipped_files(dataset)
    from explorer.core import distributed

    if write_html is not None and distributed.current().main:
        write_html(results, Path(ns.report))
    if ns.json:
        if len(per_model) == 1 and ns.suite is not None:
            top = {k: v for k, v in results.items() if k not in ("models", "examples")}
            line = {**top, **per_model[0]}
        elif len(per_model) == 1:
            line = per_model[0]
        else:
            line = {k: v for k, v in results.items() if k != "examples"}
        print_result({**line, **skipped})
    else:
        for r in per_model:
            print(_summary_line(r))
    return 0


def _summary_line(r: dict[str, Any]) -> str:
    text = f"{r['model']}: clean {100 * r['clean_acc']:.2f}%"
    if "robust_acc" in r:
        stages = ", ".join(f"{k} {100 * v:.2f}%" for k, v in r["per_attack"].items())
        text += f", robust {100 * r['robust_acc']:.2f}% (after {stages})"
        if "per_budget" in r:
            text += ", at each budget " + ", ".join(
                f"{k} {100 * v:.2f}%" for k, v in r["per_budget"].items())
        if "avg_acc" in r:
            text += (f", union {100 * r['union_acc']:.2f}%, "
                     f"average {100 * r['avg_acc']:.2f}%")
        seconds = r.get("total_seconds", r.get("seconds", 0.0))
    else:
        seconds = r["seconds"]
    return (f"{text} on {r['n']} images of {r['data']} ({r['split']}), "
            f"{seconds:.1f} s — run {r['run_id']}")
