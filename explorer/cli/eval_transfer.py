"""`explorer eval --transfer --model A --model B ...`: the transfer matrix
(:mod:`explorer.core.analysis.transfer`): adversarial examples crafted on
each model (PGD l-inf at --eps, --steps steps, by default; --transfer-attack
picks another attack with an eps budget), every model's accuracy on them.

Prints the matrix as a table (rows: crafted on, columns: evaluated on; the
diagonal is white-box) with each model's clean accuracy below it, or with
--json one result line with ``matrix``; one recorded ``eval`` run.
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import CliError, UsageError

TRANSFER_N = 200  # images when --n is not given
# eval flags that belong to other evaluations, not to the transfer matrix
_OTHER = ("suite", "report", "sweep", "checks", "examples", "min_eps", "corruptions",
          "eps_l2", "eps_l1", "n_targets", "queries", "attacks", "budgets")


def add_transfer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--transfer", action="store_true",
                   help="transfer matrix of the --model models (at least 2): "
                        "examples crafted on each (PGD l-inf at --eps, default "
                        "0.1, --steps, default 20, --seed), every model's accuracy "
                        f"on them; on the first --n images (default {TRANSFER_N})")
    p.add_argument("--transfer-attack", metavar="NAME",
                   help="--transfer: the attack crafting the examples, any with an "
                        "eps budget, e.g. fgsm, mim, apgd-ce (default pgd)")


def _flag(key: str) -> str:
    return "--masking-checks" if key == "checks" else f"--{key.replace('_', '-')}"


def check_transfer_flags(ns: argparse.Namespace) -> bool:
    """Whether this is a transfer run; flags of other evaluations refused."""
    if not ns.transfer:
        if ns.transfer_attack is not None:
            raise UsageError("--transfer-attack goes with --transfer")
        return False
    given = [k for k in _OTHER if getattr(ns, k, None) not in (None, False)]
    if given:
        raise UsageError(f"{_flag(given[0])} does not go with --transfer")
    return True


def transfer_command(args: argparse.Namespace, ns: argparse.Namespace) -> int:
    from explorer.cli.common import load_data, model_from_flags, skipped_files
    from explorer.cli.running import RecordedRun, print_result, run_job
    from explorer.cli.wrap_flags import apply_wrapper
    from explorer.core import device as devices
    from explorer.core.analysis.transfer import (
        DEFAULT_ATTACK,
        DEFAULT_STEPS,
        transfer_attack,
        transfer_dataset_job,
    )
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    names = list(dict.fromkeys(ns.models))
    if len(names) < 2:
        raise CliError(f"--transfer: a transfer matrix needs at least 2 models, got "
                       f"{len(names)} ({', '.join(names)}); repeat --model")
    n = ns.n if ns.n is not None else TRANSFER_N
    if n < 1:
        raise UsageError(f"--n must be at least 1, got {n}")
    if ns.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {ns.batch_size}")
    attack = ns.transfer_attack or DEFAULT_ATTACK
    eps = ns.eps if ns.eps is not None else 0.1
    if eps > 1:
        from explorer.core.attacks.threat import linf_budget_error

        raise linf_budget_error("--eps", eps)
    steps = ns.steps if ns.steps is not None else DEFAULT_STEPS
    stage = transfer_attack(attack, eps, steps)  # bad settings fail before loading
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(ns.data, ns.split, root=ns.root, shape=ns.input_shape)
    loaded = {}
    for name in names:
        model, _wrapper = apply_wrapper(model_from_flags(name, ns), ns)
        loaded[name] = model
    config = {"transfer": True, "models": {m: m for m in names}, "data": ns.data,
              "split": ns.split, "n": n, "attack": attack, "eps": eps,
              "steps": steps, "seed": ns.seed, "device": str(device)}
    if ns.wrap is not None:
        config["wrapper"] = {"name": ns.wrap, **ns.wrap_params}
    token = CancelToken()
    title = f"transfer ({attack}): {', '.join(names)}"
    with Workspace.open(args.workspace) as ws, \
            RecordedRun(ws, "eval", config, title=title) as run:
        events = transfer_dataset_job(
            loaded, dataset, n, attack=attack, eps=eps, steps=steps, config=config,
            batch_size=ns.batch_size, seed=ns.seed, device=device, token=token)
        results = run_job(events, token, as_json=ns.json, recorder=run.record,
                          title=title)
        run.summary = {k: results[k] for k in ("models", "matrix", "clean_acc",
                                               "attack", "eps", "n")}
    results = {**results, "data": ns.data, "split": ns.split, "device": str(device),
               "run_id": run.id, **skipped_files(dataset)}
    if ns.json:
        print_result(results)
    else:
        print(matrix_table(results, stage.params.get("steps")))
    return 0


def matrix_table(results: dict[str, Any], steps: int | None) -> str:
    """The matrix as text: rows crafted on, columns evaluated on (percent),
    the diagonal starred, clean accuracy as the last row."""
    names, matrix = results["models"], results["matrix"]
    corner = "crafted on \\ evaluated on"
    rows = [[corner, *names]]
    for i, (name, row) in enumerate(zip(names, matrix, strict=True)):
        rows.append([name, *(f"{100 * v:.2f}" + ("*" if j == i else "")
                             for j, v in enumerate(row))])
    clean = results["clean_acc"]
    rows.append(["clean (no attack)", *(f"{100 * v:.2f}" for v in clean)])
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    how = f", {steps} steps" if steps else ""
    head = (f"transfer matrix: accuracy (%) on {results['attack']} examples "
            f"(l-inf eps {results['eps']:g}{how}, seed {results['seed']}) of "
            f"{results['n']} images of {results['data']} ({results['split']})")
    foot = (f"* white-box (crafted on the model itself) — {results['seconds']:.1f} s"
            f" — run {results['run_id']}")
    return "\n".join([head, *lines, foot])
