"""The command lines of runs the app starts as subprocesses.

The Training and Evaluate pages can run their job as ``explorer train`` /
``explorer eval`` under torchrun (:mod:`explorer.core.launch`). What the
page's form says becomes the flags here, named as the commands' parsers name
them, so ``explorer train`` rebuilds the very same
:class:`~explorer.core.defenses.config.TrainingConfig`. The app may not
import the CLI, so the names the train command takes for itself are listed
here (:data:`TRAIN_DESTS`); tests check the round trip and that every
defense's and architecture's flags are named as the CLI names them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explorer.core.params import ParamError

# `explorer train`'s own argument names: a defense or architecture parameter
# of one of these names is given as --defense-NAME / --arch-NAME instead
TRAIN_DESTS = frozenset({
    "amp", "arch", "augment", "batch_size", "checkpoint_minutes", "compile", "data",
    "defense",
    "epochs", "eval_eps", "eval_n", "eval_steps", "freeze", "help", "init_arch",
    "init_from", "json", "limit_train", "lr", "new_head", "noilin",
    "noilin_growth", "noilin_rate", "noilin_rate_max", "optimizer", "resume",
    "root", "schedule", "seed", "val_fraction", "val_max"})
NOILIN_FLAGS = (("rate", "--noilin-rate"), ("growth", "--noilin-growth"),
                ("rate_max", "--noilin-rate-max"))

# TrainingConfig fields given by their own flag (None: not given)
_PLAIN = (("epochs", "--epochs"), ("batch_size", "--batch-size"),
          ("optimizer", "--optimizer"), ("lr", "--lr"), ("schedule", "--schedule"),
          ("seed", "--seed"), ("augment", "--augment"), ("eval_eps", "--eval-eps"),
          ("eval_steps", "--eval-steps"), ("eval_n", "--eval-n"),
          ("val_fraction", "--val-fraction"), ("val_max", "--val-max"),
          ("checkpoint_minutes", "--checkpoint-minutes"),
          ("limit_train", "--train-images"), ("root", "--root"),
          ("init_arch", "--init-arch"), ("amp", "--amp"))


def text(value: Any) -> str:
    """A value as a flag's text (``repr`` keeps every digit of a float)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def param_flags(params, prefix: str, taken) -> dict[str, str]:
    """Parameter name → its flag, as ``params.add_flag_group`` names it."""
    return {p.name: ("--" + f"{prefix}_{p.name}".replace("_", "-")
                     if p.name in taken else p.flag) for p in params}


def train_argv(config) -> list[str]:
    """``train ... --json`` for ``config`` (a TrainingConfig)."""
    from explorer.core import defenses, models
    from explorer.core.defenses.config import TrainingConfig

    default = TrainingConfig()
    for name in ("momentum", "weight_decay"):
        if getattr(config, name) != getattr(default, name):
            raise ParamError(f"{name} {getattr(config, name)} has no flag of "
                             "explorer train: run it in the app")
    argv = ["train", "--defense", config.defense, "--data", config.data]
    for field, flag in _PLAIN:
        value = getattr(config, field)
        if value is not None:
            argv += [flag, text(value)]
    argv += ["--compile"] if config.compile else []
    if config.init_from is not None:
        argv += ["--init", config.init_from, "--freeze", config.freeze]
        argv += ["--new-head"] if config.new_head else []
    else:
        argv += ["--arch", config.arch]
    # the defense's and the architecture's flags, named as the CLI names them
    dflags = param_flags(defenses.spec(config.defense), "defense", TRAIN_DESTS)
    aparams = () if config.init_from is not None else models.spec(config.arch)
    aflags = param_flags(aparams, "arch", TRAIN_DESTS | set(dflags))
    for flags, values in ((dflags, config.params), (aflags, config.arch_params)):
        for name, value in values.items():
            if name in flags and value is not None:
                argv += [flags[name], text(value)]
    if config.noilin is not None:
        argv.append("--noilin")
        for key, flag in NOILIN_FLAGS:
            if config.noilin.get(key) is not None:
                argv += [flag, text(config.noilin[key])]
    return [*argv, "--json"]


def resume_argv(run_id: str) -> list[str]:
    return ["train", "--resume", run_id, "--json"]


def eval_argv(models: Sequence[str], *, data: str, split: str, n: int,
              suite: str, eps: float, root: str | None = None,
              sweep: bool = True, checks: bool = True, eot: int = 1,
              examples: int = 8, custom: Mapping[str, Any] | None = None
              ) -> list[str]:
    """``eval --model ... --suite ... --json``: ``models`` are built-in names
    or files; ``custom`` the custom suite's attacks and budgets."""
    if not models:
        raise ParamError("choose at least one model to evaluate")
    argv = ["eval"]
    for model in models:
        argv += ["--model", model]
    argv += ["--data", data, "--split", split, "--n", str(n), "--suite", suite,
             "--examples", str(examples)]
    argv += ["--root", root] if root else []
    if suite == "custom":
        custom = custom or {}
        argv += ["--attacks", ",".join(custom.get("attacks", ())),
                 "--budgets", ",".join(text(b) for b in custom.get("budgets", ()))]
    else:
        argv += ["--eps", text(eps)]
    argv += ["--sweep"] if sweep else []
    argv += ["--masking-checks"] if checks else []
    argv += ["--eot", str(eot)] if eot > 1 else []
    return [*argv, "--json"]
