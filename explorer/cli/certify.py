"""`explorer certify`: randomized smoothing's certified radii, headless.

Runs :func:`explorer.core.certify.smoothing.certify_job` on the first ``--n``
images of a split and records a workspace run. With ``--json`` every line is
an event and the last the result: ``radii`` (per image in data order, the
certified radius when the smoothed prediction is correct, else null) and
``certified_acc`` at each of ``--radii``.
"""

from __future__ import annotations

import argparse

from explorer.cli.common import (
    add_data_flags,
    add_model_file_flags,
    load_data,
    model_from_flags,
    naming_flag,
    skipped_files,
)
from explorer.cli.running import RecordedRun, print_result, run_job

DEFAULT_RADII = "0,0.25,0.5,0.75,1.0"


def add_parser(sub) -> None:
    """The sub-command, added to ``explorer``'s sub-parsers."""
    p = sub.add_parser("certify", help="certified l2 radii by randomized "
                       "smoothing (Cohen et al. 2019)")
    p.add_argument("--model", required=True,
                   help="built-in model name or a model file (the base classifier)")
    add_model_file_flags(p)
    add_data_flags(p)
    p.add_argument("--sigma", default="0.25",
                   help="std of the Gaussian noise, > 0 (default: 0.25)")
    p.add_argument("--samples0", default="100",
                   help="n0: noisy samples that pick the top class (default: 100)")
    p.add_argument("--samples", default="1000",
                   help="n: noisy samples that bound its probability (default: 1000)")
    p.add_argument("--alpha", default="0.001",
                   help="failure probability of each certificate, in (0, 1) "
                        "(default: 0.001)")
    p.add_argument("--n", default="100",
                   help="certify the first N images of the split (default: 100)")
    p.add_argument("--radii", default=DEFAULT_RADII,
                   help=f"l2 radii of certified_acc (default: {DEFAULT_RADII})")
    p.add_argument("--batch", default="200",
                   help="noisy samples per forward pass (default: 200)")
    p.add_argument("--seed", default="0", help="seed of the noise (default: 0)")
    p.add_argument("--json", action="store_true",
                   help="JSON lines; the last line holds the results")


def _values(args: argparse.Namespace) -> dict:
    """The numeric flags, validated; a bad one raises naming its flag."""
    from explorer.core.certify.smoothing import check_params, check_radii
    from explorer.core.params import Param

    flags = {"sigma": "--sigma", "samples0": "--samples0", "samples": "--samples",
             "alpha": "--alpha", "batch_size": "--batch"}
    values = {}
    for name, flag in flags.items():
        raw = getattr(args, "batch" if name == "batch_size" else name)
        with naming_flag(flag):
            values.update(check_params(**{name: raw}))
    for name, flag in (("n", "--n"), ("seed", "--seed")):
        spec = Param(name, int, 0, minimum=1 if name == "n" else 0)
        with naming_flag(flag):
            values[name] = spec.validate(getattr(args, name))
    with naming_flag("--radii"):
        values["radii"] = check_radii(args.radii.split(","))
    return values


def certify_command(args: argparse.Namespace) -> int:
    from explorer.core import device as devices
    from explorer.core import models
    from explorer.core.certify.smoothing import certify_job
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    v = _values(args)
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(args.data, args.split, root=args.root,
                        shape=args.input_shape)
    model = model_from_flags(args.model, args)
    models.check_compatible(model, dataset.info)
    model = model.to(device)
    config = {"model": args.model, "data": args.data, "split": args.split,
              "device": str(device), **{k: (list(x) if isinstance(x, tuple) else x)
                                        for k, x in v.items()}}
    token = CancelToken()
    with Workspace.open(args.workspace) as ws, \
            RecordedRun(ws, "certify", config) as run:
        results = run_job(
            certify_job(model, dataset, v["n"], sigma=v["sigma"],
                        samples0=v["samples0"], samples=v["samples"],
                        alpha=v["alpha"], radii=v["radii"],
                        batch_size=v["batch_size"], seed=v["seed"], token=token,
                        device=device),
            token, as_json=args.json, recorder=run.record, title="certifying")
        run.summary = {k: x for k, x in results.items() if k != "radii"}
    results = {**results, "model": args.model, "data": args.data,
               "split": args.split, "run_id": run.id, **skipped_files(dataset)}
    if args.json:
        print_result(results)
        return 0
    curve = ", ".join(f"{r:g}: {100 * acc:.1f}%"
                      for r, acc in results["certified_acc"].items())
    print(f"certified accuracy (sigma {v['sigma']:g}) on {results['n']} images of "
          f"{args.data} ({args.split}) at radius {curve}; smoothed clean "
          f"{100 * results['clean_acc']:.1f}%, abstained "
          f"{100 * results['abstain_rate']:.1f}%, {results['seconds']:.1f} s — run "
          f"{run.id}")
    return 0
