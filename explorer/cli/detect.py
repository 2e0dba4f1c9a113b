"""`explorer detect`: how well a detector tells adversarial examples from
clean ones (:mod:`explorer.core.certify.detect`).

The detector is fitted on the first ``--fit-n`` images of the training split
of ``--data``, then scores the first ``--n`` images of ``--split`` (default
test) the model classifies right and their adversarial versions that fool
it. ``--adaptive`` also runs PGD that minimises the detector's score and
reports the AUC after it. Prints one line per number (the first names the
model and the training method its metadata records), or with ``--json`` JSON
lines whose last holds ``auc``, ``tpr_at_5fpr``, ``threshold`` (and
``auc_adaptive``), ``model`` and ``training_method``; one recorded ``detect``
run.
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    add_data_flags,
    add_model_file_flags,
    load_data,
    model_from_flags,
    naming_flag,
    skipped_files,
)

DETECTORS_TEXT = "kd, lid or non-me"  # the parser imports no core module


def add_parser(sub) -> None:
    """The ``detect`` sub-command, added to ``explorer``'s sub-parsers; an
    unset flag takes the core's default (named in its help)."""
    p = sub.add_parser("detect", help="score an adversarial-example detector: "
                       "ROC AUC and TPR at 5%% FPR")
    p.add_argument("--model", required=True,
                   help="built-in model name or a model file")
    add_model_file_flags(p)
    add_data_flags(p)
    p.add_argument("--detector", default="kd",
                   help=f"{DETECTORS_TEXT} (default: kd)")
    p.add_argument("--attack", help="attack with an l-inf eps budget (default: pgd)")
    p.add_argument("--eps", help="l-inf budget in pixels, e.g. 0.1 or 8/255 "
                                 "(default: 0.1)")
    p.add_argument("--n", type=int, help="test images (default: 200)")
    p.add_argument("--steps", type=int, help="attack iterations (default: 20)")
    p.add_argument("--fit-n", type=int,
                   help="training-split images the detector is fitted on "
                        "(default: 400)")
    p.add_argument("--adaptive", action="store_true",
                   help="also attack the detector itself (PGD that lowers its "
                        "score) and report the AUC after")
    p.add_argument("--seed", type=int, default=0, help="seed of attacks and noise")
    p.add_argument("--json", action="store_true",
                   help="JSON lines; the last line holds the results")


def check_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The core settings from the flags; a bad one is one line naming its
    flag (exit code 2)."""
    from explorer.core.certify import detect
    from explorer.core.params import Param

    with naming_flag("--eps"):
        eps = (detect.DEFAULT_EPS if args.eps is None
               else Param("eps", float, 0.1).parse(str(args.eps)))
    given = {"detector": args.detector, "attack": args.attack, "eps": eps,
             "n": args.n, "steps": args.steps, "fit_n": args.fit_n}
    core = {"attack": detect.DEFAULT_ATTACK, "n": detect.DEFAULT_N,
            "steps": detect.DEFAULT_STEPS, "fit_n": detect.DEFAULT_FIT_N}
    values = {k: core[k] if v is None else v for k, v in given.items()}
    for key, value in values.items():
        with naming_flag(f"--{key.replace('_', '-')}"):
            detect.check_settings(**{key: value})
    return values


def detect_command(args: argparse.Namespace) -> int:
    from explorer.cli.running import RecordedRun, print_result, run_job
    from explorer.core import device as devices
    from explorer.core import models
    from explorer.core.certify.detect import detect_job
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    values = check_flags(args)
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(args.data, args.split, root=args.root, shape=args.input_shape)
    fit_split = "train" if args.split != "train" else None
    fit_data = (load_data(args.data, "train", root=args.root, shape=args.input_shape)
                if fit_split and "train" in getattr(dataset.info, "splits", ())
                else None)
    model = model_from_flags(args.model, args)
    models.check_compatible(model, dataset.info)
    config = {"model": args.model, "data": args.data, "split": args.split,
              "fit_split": "train" if fit_data is not None else args.split,
              **values, "adaptive": args.adaptive, "seed": args.seed,
              "device": str(device)}
    token = CancelToken()
    title = f"detect ({args.detector}, {args.attack}): {args.model}"
    with Workspace.open(args.workspace) as ws, \
            RecordedRun(ws, "detect", config, title=title) as run:
        events = detect_job(model, dataset, **values, adaptive=args.adaptive,
                            fit_dataset=fit_data, seed=args.seed, token=token,
                            device=device)
        results = run_job(events, token, as_json=args.json, recorder=run.record,
                          title=title)
        run.summary = {k: results.get(k) for k in (
            "detector", "training_method", "auc", "tpr_at_5fpr", "threshold",
            "auc_adaptive", "n_clean", "n_adv")}
    results = {**results, "model": args.model, "data": args.data,
               "split": args.split, "fit_split": config["fit_split"],
               "device": str(device), "run_id": run.id, **skipped_files(dataset)}
    if args.json:
        print_result(results)
    else:
        print(summary_text(results))
    return 0


def summary_text(r: dict[str, Any]) -> str:
    """The result as a few lines of text."""
    d = r["detectors"][r["detector"]]
    trained = f" (trained: {r['training_method']})" if r.get("training_method") else ""
    lines = [f"detector {r['detector']} on {r['model']}{trained}: {r['attack']} at "
             f"l-inf eps {r['eps']:g} ({r['steps']} steps) on {r['n']} images of "
             f"{r['data']} ({r['split']}); fitted on {r['fit_n']} images "
             f"({r['fit_split']})",
             f"  {r['n_clean']} clean images classified right, {r['n_adv']} "
             f"adversarial that fool the model",
             f"  AUC {d['auc']:.3f}, TPR {d['tpr_at_5fpr']:.3f} at 5% FPR "
             f"(flag a score >= {d['threshold']:.4g})"]
    if r.get("adaptive"):
        if d.get("auc_adaptive") is None:
            lines.append("  adaptive attack: fooled the model on no image")
        else:
            lines.append(f"  adaptive attack: AUC {d['auc_adaptive']:.3f}, TPR "
                         f"{d['tpr_at_5fpr_adaptive']:.3f} at 5% FPR "
                         f"({d['n_adv_adaptive']} adversarial)")
    lines += [f"  note: {note}" for note in r.get("notes", [])]
    lines.append(f"{r['seconds']:.1f} s — run {r['run_id']}")
    return "\n".join(lines)
