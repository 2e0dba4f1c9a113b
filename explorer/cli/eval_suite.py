"""`explorer eval --suite quick|standard|multi`: robust accuracy by an attack
cascade (:mod:`explorer.core.analysis.cascade`), for one or several models.
`--suite custom --attacks pgd,apgd-ce --budgets 0.05,8/255` runs chosen
attacks at chosen budgets instead.

One model prints one results object; several (``--model`` repeated) print
``{"models": [...]}`` with one object per model. ``--report out.html`` hands
the results to ``explorer.core.analysis.report.write_html`` when that module
is installed.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from explorer.cli.common import CliError

SUITES = ("quick", "standard", "multi", "custom")
DEFAULT_EPS = 0.1
REPORT_MODULE = "explorer.core.analysis.report"
_SUITE_ONLY = ("eps", "eps_l2", "eps_l1", "steps", "n_targets", "queries",
               "attacks", "budgets")
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
                        "APGD-T, Square), multi (standard for l-inf, l2, l1), "
                        "custom (--attacks at --budgets)")
    p.add_argument("--eps", type=_budget, help=f"l-inf budget, e.g. 0.1 or 8/255 "
                   f"(default {DEFAULT_EPS})")
    p.add_argument("--eps-l2", type=_budget, help="multi: l2 budget (default 15·eps)")
    p.add_argument("--eps-l1", type=_budget, help="multi: l1 budget (default 100·eps)")
    p.add_argument("--steps", type=int, help="APGD iterations (default 10 quick, "
                   "20 otherwise; AutoAttack uses 100)")
    p.add_argument("--n-targets", type=int, help="APGD-T target classes (default 9)")
    p.add_argument("--queries", type=int, help="Square queries (default 5000; 0 "
                   "leaves Square out)")
    p.add_argument("--attacks", type=_names, help="custom: attacks with an eps "
                   "budget, comma-separated, e.g. pgd,apgd-ce")
    p.add_argument("--budgets", type=_budgets, help="custom: l-inf budgets, "
                   "comma-separated, e.g. 0.05,0.1,8/255")
    p.add_argument("--seed", type=int, default=0, help="attack seed (default 0)")
    p.add_argument("--report", metavar="OUT.html", help="also write an HTML report")


def wants_suite(ns: argparse.Namespace) -> bool:
    """Whether this command goes beyond one model's clean accuracy."""
    given = [f"--{k.replace('_', '-')}" for k in _SUITE_ONLY
             if getattr(ns, k) is not None]
    custom = [f"--{k}" for k in _CUSTOM_ONLY if getattr(ns, k) is not None]
    if custom and ns.suite != "custom":
        raise CliError(f"{custom[0]} needs --suite custom")
    if ns.suite is None and given:
        raise CliError(f"{given[0]} needs --suite (quick, standard or multi)")
    return ns.suite is not None or len(ns.models) > 1 or ns.report is not None


def _report_writer(path: str | None):
    if path is None:
        return None
    if importlib.util.find_spec(REPORT_MODULE) is None:
        raise CliError("--report is not available yet")
    return importlib.import_module(REPORT_MODULE).write_html


def _images(ns: argparse.Namespace):
    """The first N images of the split, in order, as two tensors."""
    import torch

    from explorer.cli.common import load_data
    from explorer.core.data.batching import batches

    dataset = load_data(ns.data, ns.split, root=ns.root)
    xs, ys = zip(*batches(dataset, 1000, ns.n), strict=True)
    return dataset, torch.cat(xs), torch.cat([torch.as_tensor(y) for y in ys])


def _settings(ns: argparse.Namespace) -> dict[str, Any]:
    """The suite keywords given on the command line, eps defaulted."""
    settings = {k: getattr(ns, k) for k in _SUITE_ONLY if getattr(ns, k) is not None}
    settings.setdefault("eps", DEFAULT_EPS)
    return settings


def _one_model(args, ns, name: str, dataset, x, y) -> dict[str, Any]:
    from explorer.cli.common import resolve_model
    from explorer.cli.running import RecordedRun, run_job
    from explorer.cli.wrap_flags import apply_wrapper
    from explorer.core import device as devices
    from explorer.core import models
    from explorer.core.analysis.cascade import run_suite
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    device = devices.pick(args.device)
    model = resolve_model(name, ns.arch)
    models.check_compatible(model, dataset.info)
    model, wrapper = apply_wrapper(model, ns)
    model = model.to(device)
    settings = _settings(ns)
    config = {"model": name, "data": ns.data, "split": ns.split, "n": ns.n,
              "device": str(device), "suite": ns.suite, "seed": ns.seed, **settings}
    if wrapper is not None:
        config["wrapper"] = wrapper
    token = CancelToken()
    with Workspace.open(args.workspace) as ws, RecordedRun(ws, "eval", config) as run:
        events = run_suite(model, x, y, ns.suite, batch_size=ns.batch_size,
                           seed=ns.seed, token=token, **settings)
        results = run_job(events, token, as_json=ns.json, recorder=run.record,
                          title=f"{name}: {ns.suite} suite")
        run.summary = {k: v for k, v in results.items() if k != "robust"}
    return {**results, "model": name, "data": ns.data, "split": ns.split,
            "device": str(device), "run_id": run.id}


def _one_model_ns(ns: argparse.Namespace, name: str) -> argparse.Namespace:
    one = copy.copy(ns)
    one.model = name
    return one


def suite_command(args: argparse.Namespace, ns: argparse.Namespace,
                  clean_only) -> int:
    """``clean_only(args, ns)`` is eval's own clean-accuracy run (a model
    list with --suite none)."""
    from explorer.cli.common import skipped_files
    from explorer.cli.running import to_json
    from explorer.core import device as devices

    if ns.n is not None and ns.n < 1:
        raise ValueError(f"--n must be at least 1, got {ns.n}")
    if ns.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {ns.batch_size}")
    write_html = _report_writer(ns.report)
    if ns.suite is not None:
        from explorer.core.analysis.custom_suite import custom_suite_plan
        from explorer.core.analysis.suites import suite_plan

        settings = _settings(ns)  # bad settings fail before any work
        if ns.suite == "custom":
            custom_suite_plan(**{k: v for k, v in settings.items() if k != "eps"})
        else:
            suite_plan(ns.suite, **settings)
    devices.configure_threads(leave_for_ui=0)
    if ns.suite is None:
        per_model = [clean_only(args, _one_model_ns(ns, name)) for name in ns.models]
    else:
        dataset, x, y = _images(ns)
        per_model = [_one_model(args, ns, name, dataset, x, y) for name in ns.models]
    results = per_model[0] if len(per_model) == 1 else {
        "models": per_model, "suite": ns.suite, "data": ns.data, "split": ns.split}
    if write_html is not None:
        write_html(results, Path(ns.report))
    if ns.json:
        shown = [{k: v for k, v in r.items() if k != "robust"} for r in per_model]
        line = shown[0] if len(shown) == 1 else {**results, "models": shown}
        line = {**line, **skipped_files(dataset)}
        print(json.dumps(to_json(line)))
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
        seconds = r["total_seconds"]
    else:
        seconds = r["seconds"]
    return (f"{text} on {r['n']} images of {r['data']} ({r['split']}), "
            f"{seconds:.1f} s — run {r['run_id']}")
