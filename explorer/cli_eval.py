"""`explorer eval`: clean accuracy now; the Evaluate issue adds attack suites."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from explorer.cli_jobs import RecordedRun, run_job


def resolve_model(source: str, arch: str | None):
    """A built-in name, or a file path (with ``--arch`` for weights-only files)."""
    from explorer.core import models

    if source in models.builtin_names():
        return models.load_builtin(source)
    if not Path(source).exists() and not any(c in source for c in "/\\."):
        raise models.ModelError(
            f"unknown model {source!r}: not a built-in model "
            f"({', '.join(models.builtin_names())}) and no such file"
        )
    return models.load(source, arch=arch)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from explorer.core import data, models
    from explorer.core import device as devices
    from explorer.core.analysis.accuracy import clean_accuracy
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    if args.n is not None and args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = data.load(args.data, args.split, root=args.root)
    model = resolve_model(args.model, args.arch)
    models.check_compatible(model, dataset.info)
    model = model.to(device)
    config = {"model": args.model, "data": args.data, "split": args.split,
              "n": args.n, "device": str(device)}
    token = CancelToken()
    with Workspace.open(args.workspace) as ws, RecordedRun(ws, "eval", config) as run:
        events = clean_accuracy(model, dataset, device=device, limit=args.n,
                                batch_size=args.batch_size, token=token)
        results = run_job(events, token, as_json=args.json, recorder=run.record,
                          title="clean accuracy")
        run.summary = results
    return {**results, "model": args.model, "data": args.data, "split": args.split,
            "device": str(device), "run_id": run.id}
