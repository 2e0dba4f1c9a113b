"""`explorer two-sample`: two-sample tests under attack
(:mod:`explorer.core.certify.two_sample_job`).

Repeated trials on a pair of distributions of the data set (``--pair``,
default: P = T-shirt/top and Pullover, Q = T-shirt/top and Shirt); prints
the type-I error, the power, the power under the attack and the defended
test's power under it, per test, or with ``--json`` JSON lines whose last
line holds ``type1``, ``power``, ``power_attacked``, ``power_defended`` and
``tests``; one recorded ``two-sample`` run.
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.running import RecordedRun, print_result, run_job


def add_parser(sub) -> None:
    """The sub-command, added to ``explorer``'s sub-parsers."""
    from explorer.core.certify.two_sample_job import PAIRS, TWO_SAMPLE_PARAMS
    from explorer.core.params import add_flags

    p = sub.add_parser(
        "two-sample", help="two-sample tests (Gaussian and deep-kernel MMD) under "
        "an attack on the second sample, and a defended test",
        description="Pairs: " + "; ".join(f"{k} — {v.text}" for k, v in PAIRS.items()))
    p.add_argument("--data", default="fashion-mnist-mini", help="data set name")
    p.add_argument("--split", default="train",
                   help="split the samples are drawn from (default: train)")
    p.add_argument("--root", help="folder of a torchvision or image-folder set")
    add_flags(p, TWO_SAMPLE_PARAMS)
    p.add_argument("--json", action="store_true",
                   help="JSON lines; the last line holds the results")


def two_sample_command(args: argparse.Namespace) -> int:
    from explorer.cli.common import load_data
    from explorer.core import device as devices
    from explorer.core.certify.two_sample_job import TWO_SAMPLE_PARAMS, two_sample_job
    from explorer.core.jobs import CancelToken
    from explorer.core.params import ParamError, given_values
    from explorer.store import Workspace

    flags = {p.name: p for p in TWO_SAMPLE_PARAMS}
    values = given_values(flags, args)  # a bad value names its flag
    if "alpha" in values and not 0 < values["alpha"] < 1:
        raise ParamError(f"--alpha: alpha must be in (0, 1), got {values['alpha']:g}")
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(args.data, args.split, root=args.root)
    config = {"data": args.data, "split": args.split, **values, "device": str(device)}
    token = CancelToken()
    title = f"two-sample tests on {args.data}"
    with Workspace.open(args.workspace) as ws, \
            RecordedRun(ws, "two-sample", config, title=title) as run:
        events = two_sample_job(dataset, token=token, device=device, **values)
        results = run_job(events, token, as_json=args.json, recorder=run.record,
                          title=title)
        run.summary = {k: results[k] for k in ("type1", "power", "power_attacked",
                                               "power_defended", "pair")}
    results = {**results, "split": args.split, "device": str(device),
               "run_id": run.id}
    if args.json:
        print_result(results)
    else:
        print(table(results))
    return 0


def table(r: dict[str, Any]) -> str:
    """The rates per test as text, the headline figures above them."""
    head = (f"two-sample tests on {r['data']} ({r['split']}), pair {r['pair']}: "
            f"{r['pair_text']}\n{r['trials']} trials, {r['n_per_sample']} images per "
            f"sample, alpha {r['alpha']:g}, attack l-inf eps {r['eps']:g} "
            f"({r['steps']} steps)")
    rows = [["test", "type-I", "power", "power attacked"]]
    rows += [[t, *(f"{v[k]:.2f}" for k in ("type1", "power", "power_attacked"))]
             for t, v in r["tests"].items()]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
             for row in rows]
    foot = (f"type-I {r['type1']:.2f}, power {r['power']:.2f} (MMD-D), attacked "
            f"{r['power_attacked']:.2f}, defended {r['power_defended']:.2f} "
            f"(ensemble) — {r['seconds']:.1f} s — run {r['run_id']}")
    return "\n".join([head, *lines, foot])
