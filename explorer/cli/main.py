"""Command line: the same jobs as the GUI, headless.

``explorer`` or ``explorer gui`` opens the app. Other commands print a table,
or with ``--json`` JSON lines whose last line is one object of results.
Errors exit non-zero with one line on stderr (``--debug`` shows a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from explorer.cli.common import EXIT_CANCELLED, EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explorer",
        description="Robustness Explorer: adversarial attacks and defenses, live.",
    )
    parser.add_argument("--workspace", metavar="DIR",
                        help="workspace folder (default: $EXPLORER_HOME or the "
                             "user data folder)")
    parser.add_argument("--device", default=None,
                        help="auto, cpu, cuda or mps (default: auto)")
    parser.add_argument("--debug", action="store_true",
                        help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the application (the default)")
    gui.add_argument("--screenshot", metavar="PNG",
                     help="render a panel after its demo action, save, exit")
    gui.add_argument("--panel", default=None, help="panel to show (e.g. data)")
    gui.add_argument("--size", default="1280x800", help="window size WxH")
    gui.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)

    for name, helptext in (("data", "data sets"), ("models", "models"),
                           ("runs", "workspace runs")):
        group = sub.add_parser(name, help=f"{helptext}: list")
        verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True)
        lister = verbs.add_parser("list", help=f"list {helptext}")
        lister.add_argument("--json", action="store_true", help="print JSON")
        if name == "runs":
            lister.add_argument("--kind", help="only runs of this kind")
            lister.add_argument("--status", help="only runs with this status")
            lister.add_argument("--limit", type=int, help="at most this many")

    # eval, attack and train parse their own flags (explorer.cli.eval ...):
    # some depend on --wrap / --attack / --method, so they parse in two passes.
    ev = sub.add_parser("eval", add_help=False, prefix_chars="\0",
                        help="evaluate a model (`eval --help` for flags)")
    ev.add_argument("argv", nargs=argparse.REMAINDER)
    # Its flags depend on --attack: explorer.cli.attack parses them in two
    # passes. NUL never occurs in argv, so nothing here looks like an option
    # and every argument reaches it verbatim.
    att = sub.add_parser("attack", add_help=False, prefix_chars="\0",
                         help="attack a data set (`attack --help` for flags)")
    att.add_argument("argv", nargs=argparse.REMAINDER)
    tr = sub.add_parser("train", add_help=False, prefix_chars="\0",
                        help="train with a defense (`train --help` for flags)")
    tr.add_argument("argv", nargs=argparse.REMAINDER)
    # Denoiser Lab: flags parsed by explorer.cli.denoise.
    for name, what in (("denoise", "score a denoiser"),
                       ("train-denoiser", "train a denoiser")):
        dn = sub.add_parser(name, add_help=False, prefix_chars="\0",
                            help=f"{what} (`{name} --help` for flags)")
        dn.add_argument("argv", nargs=argparse.REMAINDER)
    # Look inside: `boundary` (image-space slices) and `landscape` (loss).
    from explorer.cli.inside import add_parsers as add_inside_parsers

    add_inside_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "gui"
    if command == "gui":
        return _gui(args, parser)
    try:
        return COMMANDS[command](args)
    except KeyboardInterrupt:
        sys.stderr.write("cancelled\n")
        return EXIT_CANCELLED
    except Exception as exc:
        if args.debug:
            raise
        from explorer.cli.running import JobInterrupted

        if isinstance(exc, JobInterrupted):
            sys.stderr.write(f"{exc}\n")
            return EXIT_CANCELLED
        sys.stderr.write(f"error: {_one_line(exc)}\n")
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    ours = type(exc).__module__.startswith("explorer.")  # our errors read well
    if not (ours or isinstance(exc, ValueError | OSError | LookupError)):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())


def _gui(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        w, h = (int(v) for v in str(args.size if "size" in args else "1280x800")
                .lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 1280x800, got {args.size!r}")
    from explorer.gui.platform_check import prepare

    problem = prepare(screenshot=bool(getattr(args, "screenshot", None)))
    if problem is not None:
        sys.stderr.write(f"error: {problem}\n")
        return EXIT_ERROR
    from explorer.gui.app import run

    return run(
        workspace=args.workspace,
        device=args.device,
        screenshot=getattr(args, "screenshot", None),
        panel=getattr(args, "panel", None),
        size=(w, h),
        startup_probe=getattr(args, "startup_probe", False),
    )


def _emit(
    key: str, rows: list[dict[str, Any]], as_json: bool, columns: list[str]
) -> None:
    """A table, or with --json one object ``{key: rows}`` on one line."""
    if as_json:
        from explorer.cli.running import to_json

        print(json.dumps({key: to_json(rows)}))
        return
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows])
              for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


def _data_list(args: argparse.Namespace) -> int:
    from explorer.core import data

    rows = []
    for name in data.names():
        info = data.info(name)
        rows.append({
            "name": name, "title": info.title, "kind": info.kind,
            "shape": "x".join(map(str, info.shape)), "classes": len(info.classes),
            "splits": ",".join(info.splits), "needs_folder": info.needs_root,
        })
    columns = ["name", "kind", "shape", "classes", "splits", "title"]
    _emit("data", rows, args.json, columns)
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from explorer.core import models

    rows = []
    for name in models.builtin_names():
        meta = models.load_builtin(name).meta
        rows.append({
            "name": name, "kind": "built-in", "arch": meta.arch,
            "dataset": meta.dataset, "method": meta.training.get("method", ""),
            "clean_acc": meta.training.get("test_acc", ""),
        })
    for arch in models.names():
        rows.append({"name": arch, "kind": "architecture", "arch": arch})
    _emit("models", rows, args.json, ["name", "kind", "arch", "dataset", "method"])
    return 0


def _workspace(args: argparse.Namespace):
    from explorer.store import Workspace

    return Workspace.open(args.workspace)


# What a runs table shows of each run's results (--json has them all).
HEADLINE = ("clean_acc", "robust_acc", "success_rate", "seconds")


def _runs_list(args: argparse.Namespace) -> int:
    with _workspace(args) as ws:
        runs = ws.runs(kind=args.kind, status=args.status, limit=args.limit)
        rows = [r.to_json() for r in runs]
    if not args.json:
        for row in rows:
            summary = row.get("summary") or {}
            row["result"] = ", ".join(
                f"{k}={summary[k]:.4g}" for k in HEADLINE
                if isinstance(summary.get(k), float | int)
            )
    _emit("runs", rows, args.json, ["id", "kind", "status", "result"])
    return 0


def _eval(args: argparse.Namespace) -> int:
    from explorer.cli.eval import eval_command

    return eval_command(args)


def _attack(args: argparse.Namespace) -> int:
    from explorer.cli.attack import attack_command

    return attack_command(args)


def _train(args: argparse.Namespace) -> int:
    from explorer.cli.train import train_command

    return train_command(args)


def _denoise(args: argparse.Namespace, name: str) -> int:
    from explorer.cli import denoise as cli_denoise

    return getattr(cli_denoise, name)(args)


def _inside(name: str, args: argparse.Namespace) -> int:
    from explorer.cli import inside as cli_inside

    return getattr(cli_inside, name)(args)


COMMANDS = {
    "data": _data_list,
    "models": _models_list,
    "runs": _runs_list,
    "eval": _eval,
    "attack": _attack,
    "train": _train,
    "denoise": lambda args: _denoise(args, "denoise_command"),
    "train-denoiser": lambda args: _denoise(args, "train_denoiser_command"),
    "boundary": lambda args: _inside("boundary_command", args),
    "landscape": lambda args: _inside("landscape_command", args),
}
