"""`explorer boundary` and `explorer landscape`: the Look-inside jobs, headless.

Both record a workspace run, save their result arrays as ``.npz`` into the
run folder (and to ``--out`` when given; ``explorer.core.analysis.
result_files.load_npz`` reads them back) and with ``--json`` print JSON lines
whose last line holds the summary, the grid, the time and the file's path.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from explorer.cli.common import (
    UsageError,
    add_data_flags,
    add_model_file_flags,
    load_data,
    model_from_flags,
    skipped_files,
)
from explorer.cli.running import RecordedRun, print_result, run_job


def _common(p: argparse.ArgumentParser, model_help: str) -> None:
    p.add_argument("--model", required=True, action="append", help=model_help)
    add_model_file_flags(p)
    add_data_flags(p)
    p.add_argument("--index", type=int, default=0,
                   help="index of the image in the split (default: 0)")
    p.add_argument("--eps", default="0.1",
                   help="l-inf budget in pixels, e.g. 0.1 or 8/255 (default: 0.1)")
    p.add_argument("--span", type=float, default=None,
                   help="half-width of the plotted square (default: see the "
                        "command's help)")
    p.add_argument("--seed", type=int, default=0, help="seed of the directions")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per forward pass (default: 2048 for image "
                        "grids, 1000 for weight landscapes)")
    p.add_argument("--out", help="also save the result arrays to this .npz file")
    p.add_argument("--json", action="store_true",
                   help="JSON lines; the last line holds the results")


def add_parsers(sub) -> None:
    """The two sub-commands, added to ``explorer``'s sub-parsers."""
    b = sub.add_parser("boundary", help="decision regions on a 2-D slice of "
                       "image space through one image")
    _common(b, "built-in model name or weights file; repeat for several "
               "models on the same plane")
    b.add_argument("--directions", default="adv,random",
                   help="two of adv, grad, random (default: adv,random)")
    b.add_argument("--grid", type=int, default=101, help="points per side")
    b.add_argument("--steps", type=int, default=10, help="PGD steps for adv")
    b.add_argument("--no-clamp", action="store_true",
                   help="do not clip plane points to the [0, 1] box")
    la = sub.add_parser("landscape", help="loss landscape in weight or input space")
    _common(la, "built-in model name or weights file")
    la.add_argument("--space", default="weights", help="weights or input")
    la.add_argument("--grid", type=int, default=21, help="points per side")
    la.add_argument("--dims", type=int, default=2, help="weights: 1 or 2 axes")
    la.add_argument("--n", type=int, default=1000,
                    help="weights: loss over the first N images (default: 1000)")
    la.add_argument("--other", help="weights: a second checkpoint; the first "
                    "axis runs from --model (0) to it (1)")
    la.add_argument("--directions", default="grad,random",
                    help="input: two of grad, adv, random (default: grad,random)")


def _setup(args: argparse.Namespace):
    from explorer.core import device as devices
    from explorer.core import models
    from explorer.core.params import Param

    if args.out and Path(args.out).suffix != ".npz":
        raise UsageError(f"--out must end in .npz, got {args.out}")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    args.eps = Param("eps", float, 0.1, minimum=0.0, maximum=1.0).validate(args.eps)
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(args.data, args.split, root=args.root,
                        shape=args.input_shape)
    if not 0 <= args.index < len(dataset):
        raise UsageError(f"--index must be in [0, {len(dataset) - 1}] for "
                         f"{args.data} ({args.split}), got {args.index}")
    nets = []
    for source in args.model:
        model = model_from_flags(source, args)
        models.check_compatible(model, dataset.info)
        nets.append(model.to(device))
    return dataset, nets, device


def _run(args: argparse.Namespace, kind: str, config: dict[str, Any], events_of,
         file_name: str) -> dict[str, Any]:
    from explorer.core.analysis.result_files import saving_result
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    token = CancelToken()
    with Workspace.open(args.workspace) as ws, RecordedRun(ws, kind, config) as run:
        path = ws.run_dir(run.id) / file_name
        events = saving_result(events_of(token), path, meta=config)
        results = run_job(events, token, as_json=args.json, recorder=run.record,
                          title=kind)
        run.summary = results
    if args.out:
        import shutil

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        results["out"] = str(out)
    return {**results, "time": results.get("seconds"), "run_id": run.id}


def _finish(args: argparse.Namespace, results: dict[str, Any], line: str) -> int:
    if args.json:
        print_result(results)
    else:
        print(line)
    return 0


def boundary_command(args: argparse.Namespace) -> int:
    from explorer.core.analysis.slices import (
        check_directions,
        check_grid,
        image_slice_job,
    )

    kinds = check_directions(args.directions)
    check_grid(args.grid, "--grid")
    dataset, nets, device = _setup(args)
    x, y = dataset[args.index]
    config = {"models": args.model, "data": args.data, "split": args.split,
              "index": args.index, "directions": list(kinds), "grid": args.grid,
              "eps": args.eps, "span": args.span, "seed": args.seed,
              "device": str(device)}

    def events_of(token):
        return image_slice_job(nets, x, y, directions=kinds, grid=args.grid,
                               span=args.span, eps=args.eps, steps=args.steps,
                               seed=args.seed, clamp=not args.no_clamp,
                               batch_size=args.batch_size or 2048, token=token)

    results = {**_run(args, "boundary", config, events_of, "boundary.npz"),
               **skipped_files(dataset)}
    shares = ", ".join(f"{m}: {100 * s:.1f}%" for m, s in
                       zip(args.model, results["label_share"], strict=True))
    return _finish(args, results, f"{args.grid}x{args.grid} slice through image "
                   f"{args.index} (class {y}) in {results['seconds']:.1f} s; share "
                   f"of the square keeping the class: {shares}; saved "
                   f"{results['path']} — run {results['run_id']}")


def landscape_command(args: argparse.Namespace) -> int:
    from explorer.core.analysis.input_landscape import input_landscape_job
    from explorer.core.analysis.landscape import SPACES, weight_landscape_job
    from explorer.core.analysis.slices import check_grid

    if args.space not in SPACES:
        raise UsageError(f"--space must be one of {', '.join(SPACES)}, got "
                         f"{args.space!r}")
    if len(args.model) != 1:
        raise UsageError("landscape takes one --model")
    check_grid(args.grid, "--grid")
    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    dataset, (model,), device = _setup(args)
    config = {"model": args.model[0], "data": args.data, "split": args.split,
              "space": args.space, "grid": args.grid, "span": args.span,
              "seed": args.seed, "device": str(device)}
    if args.space == "weights":
        x, y = dataset.as_tensors(0, args.n)
        other = (model_from_flags(args.other, args)
                 if args.other else None)
        span = 1.0 if args.span is None else args.span
        config.update(dims=args.dims, n=len(x), other=args.other)

        def events_of(token):
            return weight_landscape_job(model, x, y, dims=args.dims, grid=args.grid,
                                        span=span, seed=args.seed, other=other,
                                        batch_size=args.batch_size or 1000,
                                        token=token)
    else:
        x, y = dataset[args.index]
        kinds = tuple(k.strip() for k in args.directions.split(","))
        config.update(index=args.index, eps=args.eps, directions=list(kinds))

        def events_of(token):
            return input_landscape_job(model, x, y, grid=args.grid, eps=args.eps,
                                       span=args.span, directions=kinds,
                                       seed=args.seed,
                                       batch_size=args.batch_size or 2048,
                                       token=token)

    r = {**_run(args, "landscape", config, events_of, "landscape.npz"),
         **skipped_files(dataset)}
    return _finish(args, r, f"{args.space} landscape, {args.grid} points per side, "
                   f"in {r['seconds']:.1f} s: loss {r['loss_centre']:.4g} at the "
                   f"centre, {r['loss_min']:.4g}..{r['loss_max']:.4g} overall; "
                   f"saved {r['path']} — run {r['run_id']}")
