"""The ``explorer`` command: its parser and the dispatch to each command.

``explorer`` or ``explorer gui`` opens the app. Other commands print a table,
or with ``--json`` JSON lines, each an object with a ``type`` (``progress``,
``metric``, ``log``, ``artifact``, ``epoch``), the last of type ``result``.
The global flags ``--workspace``, ``--device`` and ``--debug`` go before or
after the command. Exit codes: 0 done, 1 a runtime error (one line naming
the file or parameter; ``--debug`` shows the traceback), 2 a usage error,
130 cancelled. Commands are imported only when they run (this is the only
module that imports lazily), so ``explorer --help`` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from explorer.cli.common import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_USAGE,
    CliError,
    OneLineParser,
    UsageError,
    add_model_file_flags,
)

# command -> "module:function" taking the parsed arguments
COMMANDS = {
    "gui": "explorer.cli.gui:gui_command",
    "data": "explorer.cli.lists:data_list",
    "models": "explorer.cli.models:models_command",
    "runs": "explorer.cli.lists:runs_list",
    "attacks": "explorer.cli.lists:attacks_list",
    "defenses": "explorer.cli.lists:defenses_list",
    "eval": "explorer.cli.eval:eval_command",
    "attack": "explorer.cli.attack:attack_command",
    "train": "explorer.cli.train:train_command",
    "denoise": "explorer.cli.denoise:denoise_command",
    "train-denoiser": "explorer.cli.denoise:train_denoiser_command",
    "boundary": "explorer.cli.inside:boundary_command",
    "landscape": "explorer.cli.inside:landscape_command",
    "certify": "explorer.cli.certify:certify_command",
    "detect": "explorer.cli.detect:detect_command",
    "two-sample": "explorer.cli.two_sample:two_sample_command",
    "recipe": "explorer.cli.recipe:recipe_command",
    "run": "explorer.cli.recipe:run_command",
}
# These parse their own flags (some depend on --attack, --defense or --wrap,
# so they parse in two passes): everything after the name reaches them.
SELF_PARSED = {
    "eval": "evaluate a model (`eval --help` for flags)",
    "attack": "attack a data set (`attack --help` for flags)",
    "train": "train with a defense (`train --help` for flags and defenses)",
    "denoise": "score a denoiser (`denoise --help` for flags)",
    "train-denoiser": "train a denoiser (`train-denoiser --help` for flags)",
}
LISTS = {"data": "data sets", "models": "built-in models and architectures "
                                         "(archs, export)",
         "runs": "workspace runs", "attacks": "attacks and their parameters",
         "defenses": "training defenses and their parameters"}


def _version() -> str:
    from explorer import __version__

    return f"explorer {__version__}"


def _global_flags(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    missing = None if defaults else argparse.SUPPRESS
    parser.add_argument("--workspace", metavar="DIR", default=missing,
                        help="workspace folder (default: $EXPLORER_HOME or the "
                             "user data folder)")
    parser.add_argument("--device", default=missing,
                        help="auto, cpu, cuda or mps (default: auto)")
    parser.add_argument("--debug", action="store_true", default=missing,
                        help="show a traceback on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="explorer",
        description="Robustness Explorer: adversarial attacks and defenses, live.",
        epilog="Global flags may also follow the command.",
    )
    parser.add_argument("--version", action="version", version=_version())
    _global_flags(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=OneLineParser)

    gui = sub.add_parser("gui", help="open the application (the default)")
    gui.add_argument("--panel", default=None,
                     help="the page to open (data, attack, training, evaluate, "
                          "playground, inside, denoise, certify)")
    gui.add_argument("--screenshot", metavar="PNG",
                     help="render the page after its demo action, save, exit")
    gui.add_argument("--size", default="1280x800", help="window size WxH")
    gui.add_argument("--presenter", action="store_true",
                     help="start in presenter mode: full screen, large type, "
                          "a guided story (arrow keys; Esc leaves)")
    gui.add_argument("--step", type=int, default=None,
                     help="with --presenter: the story's step to open (1 = first)")
    gui.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)

    for name, what in LISTS.items():
        group = sub.add_parser(name, help=f"{what}: list")
        verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True,
                                     parser_class=OneLineParser)
        lister = verbs.add_parser("list", help=f"list {what}")
        lister.add_argument("--json", action="store_true",
                            help="print one JSON result line")
        if name == "models":
            archs = verbs.add_parser(
                "archs", help="architectures a weights file can be loaded into: "
                              "the app's own, torchvision's and timm's (if installed)")
            archs.add_argument("--library", choices=("own", "torchvision", "timm"),
                               help="only this library's")
            archs.add_argument("--json", action="store_true",
                               help="print one JSON result line")
            export = verbs.add_parser(
                "export", help="write a model as a torch.export program (.pt2)")
            export.add_argument("--model", required=True,
                                help="built-in model name or a model file")
            add_model_file_flags(export)
            export.add_argument("--out", required=True, metavar="OUT.pt2")
            export.add_argument("--json", action="store_true",
                                help="print one JSON result line")
            info = verbs.add_parser(
                "info", help="what a model is: its metadata, parameter count and "
                             "guardrail warnings; --logits N shows its outputs")
            info.add_argument("--model", required=True,
                              help="built-in model name, robustbench:NAME or a file")
            add_model_file_flags(info)
            info.add_argument("--logits", type=int, default=0, metavar="N",
                              help="also print the logits of N images of uniform "
                                   "noise drawn with seed 0 (torch.rand on a "
                                   "generator seeded 0), to compare formats")
            info.add_argument("--json", action="store_true",
                              help="print one JSON result line")
        if name == "runs":
            lister.add_argument("--kind", help="only runs of this kind")
            lister.add_argument("--status", help="only runs with this status")
            lister.add_argument("--limit", type=int, help="at most this many")

    for name, helptext in SELF_PARSED.items():
        # NUL never occurs in argv: nothing looks like an option here, so
        # every argument reaches the command verbatim.
        own = sub.add_parser(name, add_help=False, prefix_chars="\0", help=helptext)
        own.add_argument("argv", nargs=argparse.REMAINDER)

    from explorer.cli.detect import add_parser as add_detect_parser
    from explorer.cli.inside import add_parsers

    add_parsers(sub)
    from explorer.cli import certify

    certify.add_parser(sub)
    add_detect_parser(sub)
    from explorer.cli.two_sample import add_parser

    add_parser(sub)
    from explorer.cli import recipe

    recipe.add_parsers(sub)
    return parser


def _split_globals(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Take ``--workspace``, ``--device``, ``--debug`` from anywhere in argv."""
    globals_only = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _global_flags(globals_only, defaults=False)
    found, rest = globals_only.parse_known_args(argv)
    return found, rest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        found, rest = _split_globals(argv)
        args = build_parser().parse_args(rest)
    except UsageError as exc:
        return _report(exc)
    for key, value in vars(found).items():
        setattr(args, key, value)
    command = args.command or "gui"
    refusal = _single_process_only(command)
    if refusal is not None:
        if os.environ.get("RANK", "0") == "0":  # one line, not one per process
            sys.stderr.write(f"error: {refusal}\n")
        return EXIT_USAGE
    module, function = COMMANDS[command].split(":")
    term = signal.getsignal(signal.SIGTERM)  # a job may set it (term_cancels)
    try:
        return getattr(importlib.import_module(module), function)(args)
    except KeyboardInterrupt:
        sys.stderr.write("cancelled\n")
        return EXIT_CANCELLED
    except Exception as exc:
        if debug:
            raise
        return _report(exc)
    finally:
        if term is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, term)


# the commands that split their work over torchrun's processes
DISTRIBUTED_COMMANDS = ("train", "eval")


def _several() -> bool:
    """Whether torchrun started this process as one of several."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def _single_process_only(command: str) -> str | None:
    """Why ``command`` refuses to run as one of several torchrun processes
    (None when it may, or when this is one process): every copy would do the
    whole job again, and record it again."""
    if not _several() or command in DISTRIBUTED_COMMANDS:
        return None
    return (f"explorer {command} runs in one process: only explorer train and "
            f"explorer eval split their work over torchrun's processes (start "
            f"it without torchrun)")


def _report(exc: Exception) -> int:
    """One line on stderr; the exit code the error calls for."""
    from explorer.cli.running import JobInterrupted
    from explorer.core.params import ParamError

    if isinstance(exc, JobInterrupted):
        sys.stderr.write(f"{exc}\n")
        return EXIT_CANCELLED
    usage = isinstance(exc, UsageError | ParamError)
    rank = os.environ.get("RANK", "0") if _several() else "0"
    if rank == "0":
        sys.stderr.write(f"error: {one_line(exc)}\n")
    elif not usage:  # a rank's own failure; a bad flag is rank 0's to say
        sys.stderr.write(f"error: rank {rank}: {one_line(exc)}\n")
    return EXIT_USAGE if usage else EXIT_ERROR


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    ours = type(exc).__module__.startswith("explorer.")  # our errors read well
    if not (ours or isinstance(exc, CliError | ValueError | OSError | LookupError)):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())
