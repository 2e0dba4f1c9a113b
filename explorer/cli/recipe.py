"""`explorer recipe export RUN_ID FILE` and `explorer run FILE`: recipes.

A run's recipe (:mod:`explorer.store.recipe`) is written when the run is
created; ``recipe export`` copies it out (a run from before recipes existed
gets one built from its stored config, without checksums). ``run`` calls the
recipe's command with its recorded config (``train``, ``attack``, ``eval``: one
model's clean accuracy or a suite comparison), records
a new run and prints the command's result; first it compares the versions,
the device and the checksums with the ones here and warns of each difference
(on stderr, and with ``--json`` in the result's ``warnings``). A bad recipe
file is one line naming the file, exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any

from explorer.cli.common import CliError, OneLineParser

RUNNABLE = ("train", "attack", "eval")


def add_parsers(sub) -> None:
    """The ``recipe`` and ``run`` sub-commands."""
    group = sub.add_parser("recipe", help="a run's recipe: export")
    verbs = group.add_subparsers(dest="verb", metavar="VERB", required=True,
                                 parser_class=OneLineParser)
    export = verbs.add_parser("export", help="write a run's recipe.toml to FILE")
    export.add_argument("run_id", metavar="RUN_ID")
    export.add_argument("file", metavar="FILE")
    export.add_argument("--json", action="store_true",
                        help="print one JSON result line")
    run = sub.add_parser("run", help="reproduce a run from its recipe file "
                                     f"({', '.join(RUNNABLE)})")
    run.add_argument("file", metavar="FILE", help="a recipe.toml")
    run.add_argument("--json", action="store_true",
                     help="JSON lines; the last line holds the results")


def recipe_command(args: argparse.Namespace) -> int:
    from explorer.cli.running import print_result
    from explorer.store import Workspace
    from explorer.store import recipe as recipes

    with Workspace.open(args.workspace) as ws:
        recipe = ws.recipe(args.run_id)
    try:
        path = recipes.write(recipe, args.file)
    except OSError as exc:
        raise CliError(f"{args.file}: cannot write the recipe ({exc})") from None
    if args.json:
        print_result({"run_id": args.run_id, "file": str(path),
                      "notes": recipe.notes})
        return 0
    print(f"wrote {path}: the {recipe.kind} recipe of run {args.run_id}")
    for note in recipe.notes:
        print(f"note: {note}")
    return 0


def read_recipe(file: str):
    """The recipe in ``file``, runnable here; a bad one is a CliError (exit 1)."""
    from explorer.core.params import ParamError
    from explorer.store import recipe as recipes

    try:
        recipe = recipes.read(file)
    except ParamError as exc:
        raise CliError(str(exc)) from None
    if recipe.kind not in RUNNABLE:
        raise CliError(f"{file}: explorer run reproduces {', '.join(RUNNABLE)} "
                       f"recipes, not kind {recipe.kind!r}")
    return recipe


def run_argv(recipe, file: str) -> list[str]:
    """The command's flags (without ``--json``) that rebuild the recipe's config."""
    from explorer.core.params import ParamError

    try:
        argv = {"train": _train_argv, "attack": _attack_argv,
                "eval": _eval_argv}[recipe.kind](recipe.config)
    except ParamError as exc:
        raise CliError(f"{file}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CliError(f"{file}: bad {recipe.kind} config ({exc!r})") from None
    return argv


def _train_argv(config: dict[str, Any]) -> list[str]:
    from explorer.core.defenses.config import TrainingConfig
    from explorer.core.launch_args import train_argv

    argv = train_argv(TrainingConfig.from_json(config))
    return [a for a in argv[1:] if a != "--json"]


def _attack_argv(config: dict[str, Any]) -> list[str]:
    from explorer.cli import attack
    from explorer.core import attacks
    from explorer.core.launch_args import param_flags, text
    from explorer.core.params import ParamError

    if "wrapper" in config:
        raise ParamError("explorer run does not reproduce attacks on a wrapped "
                         "model (--wrap) yet")
    mode = config.get("mode", "batch")  # the Attack Lab's tab
    if mode != "batch":
        raise ParamError(f"an Attack Lab {mode} run: explorer run reproduces "
                         "attacks on the first N images (explorer attack, the "
                         "Batch tab)")
    # the app's Batch tab records neither: it attacks as explorer attack's defaults
    batch_size, seed = config.get("batch_size", 256), config.get("seed", 0)
    argv = ["--attack", config["attack"], "--model", config["model"],
            "--data", config["data"], "--split", config["split"],
            "--n", str(config["n"]), "--batch-size", str(batch_size),
            "--seed", str(seed)]
    taken = vars(attack._common_parser().parse_known_args([])[0])
    flags = param_flags(attacks.spec(config["attack"]), "attack", taken)
    for name, value in config.get("params", {}).items():
        if name in flags and value is not None:
            argv += [flags[name], text(value)]
    return argv


def _eval_argv(config: dict[str, Any]) -> list[str]:
    """``explorer eval``'s flags: one model's clean accuracy, or (``models``,
    as the Evaluate page and ``eval --suite`` record it) a suite comparison."""
    from explorer.core.launch_args import text
    from explorer.core.params import ParamError

    if "wrapper" in config:
        raise ParamError("explorer run does not reproduce evaluations of a "
                         "wrapped model (--wrap) yet")
    several = config.get("models")
    argv: list[str] = []
    for model in (list(several.values()) if several else [config["model"]]):
        argv += ["--model", model]
    argv += ["--data", config["data"], "--split", config["split"]]
    if config.get("n") is not None:
        argv += ["--n", str(config["n"])]
    suite = config.get("suite") if several else None
    if suite is None:
        return argv
    argv += ["--suite", suite, "--seed", str(config.get("seed", 0))]
    if suite == "custom":
        argv += ["--attacks", ",".join(config["attacks"]),
                 "--budgets", ",".join(text(b) for b in config["budgets"])]
    else:
        argv += ["--eps", text(config["eps"])]
    # the CLI records whether it swept, the app the sweep's budgets
    if config.get("sweep", bool(config.get("sweep_eps", True))):
        argv.append("--sweep")
    if config.get("checks"):
        argv.append("--masking-checks")
    if int(config.get("eot", 1)) > 1:
        argv += ["--eot", str(config["eot"])]
    return argv


def _device(args: argparse.Namespace, recipe) -> str:
    """The device to run on: --device, else the recipe's where it exists here."""
    from explorer.core import device as devices

    if args.device is not None or not recipe.device:
        return str(devices.pick(args.device))
    try:
        return str(devices.pick(recipe.device))
    except devices.DeviceError:
        return str(devices.pick(None))


def run_command(args: argparse.Namespace) -> int:
    from explorer.cli import attack, train
    from explorer.cli import eval as eval_cli
    from explorer.store import recipe as recipes

    recipe = read_recipe(args.file)
    argv = run_argv(recipe, args.file)
    args.device = _device(args, recipe)
    warnings = recipes.differences(recipe, args.device)
    for line in warnings:
        sys.stderr.write(f"warning: {line}\n")
    command = {"train": train.train_command, "attack": attack.attack_command,
               "eval": eval_cli.eval_command}[recipe.kind]
    args.argv = [*argv, "--json"] if args.json else argv
    with contextlib.redirect_stdout(_WithWarnings(sys.stdout, warnings)):
        return command(args)


class _WithWarnings(io.TextIOBase):
    """stdout, with ``warnings`` added to the command's JSON result line."""

    def __init__(self, out, warnings: list[str]) -> None:
        super().__init__()
        self.out, self.warnings, self.pending = out, warnings, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.out.write(self._with_warnings(line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.out.write(self.pending)
            self.pending = ""
        self.out.flush()

    def _with_warnings(self, line: str) -> str:
        if not line.startswith('{"type": "result"'):
            return line
        result = json.loads(line)
        result["warnings"] = [*result.get("warnings", []), *self.warnings]
        return json.dumps(result)
