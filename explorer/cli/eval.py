"""`explorer eval`: clean accuracy now; the Evaluate issue adds attack suites.

``--wrap NAME`` evaluates the model inside an inference-time defense; the
wrapper's ``--wrap-*`` flags depend on NAME, so the arguments are parsed in
two passes (the sub-command in ``explorer.cli.main`` hands them over verbatim).

Under ``torchrun --nproc-per-node N`` the images are split over the processes
(:mod:`explorer.cli.eval_ranks`): clean accuracy, ``--min-eps`` and
``--suite`` give the one-process results, with ``world_size`` in the result.
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    OneLineParser,
    UsageError,
    add_data_flags,
    add_model_file_flags,
    guardrail_warnings,
    load_data,
    model_from_flags,
    skipped_files,
)
from explorer.cli.eval_ranks import check_split, join, recorded_run, refuse_unsplit
from explorer.cli.eval_suite import add_suite_flags, suite_command, wants_suite
from explorer.cli.eval_transfer import (
    add_transfer_flags,
    check_transfer_flags,
    transfer_command,
)
from explorer.cli.running import print_result, run_job
from explorer.cli.wrap_flags import (
    add_wrap_flag,
    add_wrapper_flags,
    apply_wrapper,
    wrapper_values,
)


def _parser(add_help: bool = True) -> OneLineParser:
    p = OneLineParser(prog="explorer eval", allow_abbrev=False, add_help=add_help,
                      description="Evaluate models: clean accuracy, or "
                      "robust accuracy under an attack suite (--suite).")
    p.add_argument("--model", action="append", help="built-in model name or a "
                   "weights file; repeat it to compare several models")
    add_model_file_flags(p)
    add_data_flags(p)
    p.add_argument("--n", "--images", dest="n", type=int, default=None,
                   help="evaluate the first N images of the split (default: "
                        "all); under torchrun write --images N (torchrun's own "
                        "parser takes --n for its --nnodes/--nproc-per-node)")
    p.add_argument("--batch-size", type=int, default=500)
    add_wrap_flag(p)
    p.add_argument("--min-eps", action="store_true",
                   help="also each image's minimal adversarial eps (DeepFool, "
                        "then a binary search with PGD): 'min_eps' per image, 0 "
                        f"for one already misclassified, null for one not broken "
                        f"inside the box; on the first --n images "
                        f"(default {MIN_EPS_N})")
    p.add_argument("--min-eps-norm", choices=("linf", "l2"), default="linf",
                   help="the norm of --min-eps (default linf)")
    p.add_argument("--corruptions", action="store_true",
                   help="also accuracy under Gaussian noise (sigma 0..0.3) and "
                        "rotation (0..45 degrees), and the adversarial confusion "
                        "matrix (PGD-20 at --eps, default 0.1); on the first --n "
                        f"images (default {MIN_EPS_N})")
    add_suite_flags(p)
    add_transfer_flags(p)
    p.add_argument("--json", action="store_true",
                   help="JSON lines; the last line holds the results")
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    """Both passes; ``ns.wrap_params`` holds the wrapper's validated values."""
    ns, _ = _parser(add_help=False).parse_known_args(argv)
    parser = _parser()
    if ns.wrap is not None:
        add_wrapper_flags(parser, ns.wrap)
    ns = parser.parse_args(argv)  # --help prints and exits here
    if ns.model is None:
        raise UsageError("--model is required (a built-in model name or a file)")
    ns.models, ns.model = ns.model, ns.model[0]
    ns.wrap_params = wrapper_values(ns) if ns.wrap is not None else {}
    return ns


MIN_EPS_N = 200  # --min-eps images when --n is not given


def eval_command(args: argparse.Namespace) -> int:
    ns = parse(list(args.argv))
    transfer = check_transfer_flags(ns)
    refuse_unsplit(ns, transfer)
    if transfer:
        return transfer_command(args, ns)
    ns.corruption_eps = 0.1
    if ns.corruptions and ns.suite is None and not ns.checks and not ns.sweep:
        # --eps is the adversarial confusion's budget here, not a suite's
        ns.corruption_eps, ns.eps = (ns.eps if ns.eps is not None else 0.1), None
        if not 0 < ns.corruption_eps <= 1:  # before any work
            from explorer.core.attacks.threat import linf_budget_error

            if ns.corruption_eps > 1:
                raise linf_budget_error("--eps", ns.corruption_eps)
            raise UsageError(f"--eps must be positive, got {ns.corruption_eps:g}")
    suite = wants_suite(ns)
    if suite and (ns.min_eps or ns.corruptions):
        flag = "--min-eps" if ns.min_eps else "--corruptions"
        raise UsageError(f"{flag} goes with the clean evaluation, not with "
                         f"--suite (or several models)")
    from explorer.core import distributed

    join(args)
    try:
        return _eval(args, ns, suite)
    finally:
        distributed.shutdown()


def _eval(args: argparse.Namespace, ns: argparse.Namespace, suite: bool) -> int:
    if suite:
        return suite_command(args, ns, evaluate)
    results = evaluate(args, ns)
    if ns.json:
        print_result(results)
    else:
        wrapped = f" (wrapped: {ns.wrap})" if ns.wrap else ""
        print(f"clean accuracy: {100 * results['clean_acc']:.2f}%{wrapped} "
              f"on {results['n']} images of {results['data']} ({results['split']}), "
              f"{results['seconds']:.1f} s — run {results['run_id']}")
    return 0


def evaluate(args: argparse.Namespace, ns: argparse.Namespace) -> dict[str, Any]:
    """``args`` the global options (workspace, device), ``ns`` eval's own.
    Under torchrun each rank counts its shard of the images and the counts
    are gathered (analysis/sharding.py); rank 0 records the run."""
    from explorer.core import device as devices
    from explorer.core import distributed, models
    from explorer.core.analysis.accuracy import clean_accuracy
    from explorer.core.analysis.sharding import Shard, merge_clean
    from explorer.core.jobs import CancelToken, Metric

    if ns.n is not None and ns.n < 1:
        raise UsageError(f"--n must be at least 1, got {ns.n}")
    if ns.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {ns.batch_size}")
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(ns.data, ns.split, root=ns.root, shape=ns.input_shape)
    model = model_from_flags(ns.model, ns)
    models.check_compatible(model, dataset.info)
    model, wrapper = apply_wrapper(model, ns)
    model = model.to(device)
    config = {"model": ns.model, "data": ns.data, "split": ns.split,
              "n": ns.n, "device": str(device)}
    if wrapper is not None:
        config["wrapper"] = wrapper
    world = distributed.current()
    total = len(dataset) if ns.n is None else min(ns.n, len(dataset))
    check_split(world, total)
    if world.distributed:
        config["world_size"] = world.size
    token = CancelToken()
    with recorded_run(world, args.workspace, "eval", config) as run:
        events = clean_accuracy(model, Shard(dataset, world.shard(total)),
                                device=device, batch_size=ns.batch_size, token=token)
        results = run_job(events, token, as_json=ns.json or not world.main,
                          recorder=run.record, title="clean accuracy")
        if world.distributed:
            results = merge_clean(world.gather(results))
            run.record(Metric("clean_acc", results["clean_acc"]))
        if getattr(ns, "min_eps", False):
            results.update(_min_eps(model, dataset, ns, device, token, world))
        if getattr(ns, "corruptions", False):
            results.update(_corruptions(model, dataset, ns, device, token))
        run.summary = results
    warnings = guardrail_warnings(model, dataset, device, results["clean_acc"])
    return {**results, "model": ns.model, "data": ns.data, "split": ns.split,
            "device": str(device), "run_id": run.id, "warnings": warnings,
            "world_size": world.size, **skipped_files(dataset)}


def _min_eps(model, dataset, ns: argparse.Namespace, device, token,
             world) -> dict[str, Any]:
    """Per-image minimal eps of the first images (see analysis/distance.py);
    under torchrun each rank searches its shard and the lists are joined."""
    from explorer.core.analysis.distance import minimal_distance
    from explorer.core.analysis.sharding import Shard, merge_min_eps

    n = min(ns.n if ns.n is not None else MIN_EPS_N, len(dataset))
    check_split(world, n)
    span = world.shard(n)
    events = minimal_distance(model, Shard(dataset, span), n=None,
                              batch_size=ns.batch_size, device=device, token=token,
                              norm=ns.min_eps_norm, first=span.start)
    found = run_job(events, token, as_json=ns.json or not world.main,
                    title="minimal eps")
    if world.distributed:
        found = merge_min_eps(world.gather(found))
    per_image = [0.0 if not ok else (float(d) if hit else None)
                 for d, hit, ok in zip(found["distances"], found["broken"],
                                       found["correct"], strict=True)]
    return {"min_eps": per_image, "min_eps_norm": found["norm"],
            "min_eps_n": found["n"],
            "min_eps_median": None if found["median"] != found["median"]  # NaN
            else found["median"],
            "min_eps_unbroken": found["n_unbroken"]}


def _corruptions(model, dataset, ns: argparse.Namespace, device,
                 token) -> dict[str, Any]:
    """Noise and rotation accuracy, and the adversarial confusion matrix
    (analysis/corruption.py), on the first images."""
    from explorer.core.analysis.corruption import corruption_report

    n = ns.n if ns.n is not None else min(MIN_EPS_N, len(dataset))
    found = run_job(corruption_report(model, dataset, eps=ns.corruption_eps, n=n,
                                      batch_size=ns.batch_size, device=device,
                                      token=token),
                    token, as_json=ns.json, title="corruptions")
    noise, adv = found["corruptions"], found["adversarial_confusion"]
    return {"corruptions": {k: noise[k] for k in ("sigmas", "noise_acc", "angles",
                                                  "rotation_acc", "n")},
            "adversarial_confusion": {k: adv[k] for k in (
                "attack", "params", "n", "robust_acc", "confusion",
                "clean_confusion")}}
