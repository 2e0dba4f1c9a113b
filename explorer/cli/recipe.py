"""`explorer recipe export RUN_ID FILE` and `explorer run FILE`: recipes.

A run's recipe (:mod:`explorer.store.recipe`) is written when the run is
created; ``recipe export`` copies it out (a run from before recipes existed
gets one built from its stored config, without checksums). ``run`` calls the
recipe's command with its recorded config (``train`` and ``attack``), records
a new run and prints the command's result; first it compares the versions,
the device and the checksums with the ones here and warns of each difference
(on stderr, and with ``--json`` in the result's ``warnings``). A bad recipe
file is one line naming the file, exit 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import CliError, OneLineParser

RUNNABLE = ("train", "attack")


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
        raise CliError(f"{file}: explorer run reproduces {' and '.join(RUNNABLE)} "
                       f"recipes, not kind {recipe.kind!r}")
    return recipe


def run_argv(recipe, file: str) -> list[str]:
    """The command's flags (without ``--json``) that rebuild the recipe's config."""
    from explorer.core.params import ParamError

    try:
        argv = (_train_argv(recipe.config) if recipe.kind == "train"
                else _attack_argv(recipe.config))
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
    argv = ["--attack", config["attack"], "--model", config["model"],
            "--data", config["data"], "--split", config["split"],
            "--n", str(config["n"]), "--batch-size", str(config["batch_size"]),
            "--seed", str(config["seed"])]
    taken = vars(attack._common_parser().parse_known_args([])[0])
    flags = param_flags(attacks.spec(config["attack"]), "attack", taken)
    for name, value in config.get("params", {}).items():
        if name in flags and value is not None:
            argv += [flags[name], text(value)]
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
    from explorer.cli.running import print_result
    from explorer.store import recipe as recipes

    recipe = read_recipe(args.file)
    argv = run_argv(recipe, args.file)
    args.device = _device(args, recipe)
    warnings = recipes.differences(recipe, args.device)
    for line in warnings:
        sys.stderr.write(f"warning: {line}\n")
    command = train if recipe.kind == "train" else attack
    if not args.json:
        args.argv = argv
        return (train.train_command(args) if recipe.kind == "train"
                else attack.attack_command(args))
    ns, _ = command.parse([*argv, "--json"])
    if recipe.kind == "train":
        results = train.run_training(args, ns)
    else:
        results = attack.run_attack(args, ns)
    results["warnings"] = [*results.get("warnings", []), *warnings]
    print_result(results)
    return 0
