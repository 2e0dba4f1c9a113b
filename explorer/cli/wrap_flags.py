"""``--wrap NAME``: an inference-time defense around the loaded model (CLI).

The wrapper's parameters become flags named ``--wrap-PARAM`` (``--wrap-lam``,
``--wrap-samples`` ...), so they never clash with an attack's own flags; they
exist only once ``--wrap`` names a wrapper, which is why the commands that
offer it parse their arguments in two passes.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from explorer.cli.common import naming_flag

PREFIX = "wrap_"


def add_wrap_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wrap", metavar="NAME",
        help="wrap the model in an inference-time defense: mixup-inference "
             "(randomized: judge it with --eot) or bit-depth (rounding with zero "
             "gradient: judge it with --bpda identity); `--wrap NAME --help` "
             "lists its --wrap-* parameters")


def add_wrapper_flags(parser: argparse.ArgumentParser, name: str) -> None:
    """The ``--wrap-PARAM`` flags of wrapper ``name``; UsageError when unknown."""
    from explorer.core.params import add_flag_group

    add_flag_group(parser, f"parameters of --wrap {name}", _spec(name),
                   prefix=PREFIX.rstrip("_"), always=True)


def _spec(name: str):
    from explorer.core.defenses import wrapper_spec

    with naming_flag("--wrap"):
        return wrapper_spec(name)


def wrapper_values(ns: argparse.Namespace) -> dict[str, Any]:
    """Validated values of the ``--wrap-PARAM`` flags given (defaults omitted)."""
    from explorer.core.params import given_values

    spec = _spec(ns.wrap)
    flags = {p.name: dataclasses.replace(p, name=PREFIX + p.name) for p in spec}
    return given_values(flags, ns, spec)


def apply_wrapper(model, ns: argparse.Namespace) -> tuple[Any, dict[str, Any] | None]:
    """(the model wrapped as ``--wrap`` asks, the wrapper's run config or None).

    Mixup Inference's mixup set comes from the data set being evaluated (its
    train split); bit-depth needs none.
    """
    if ns.wrap is None:
        return model, None
    from explorer.core.defenses.inference_wrap import (
        mix_set,
        needs_mix_set,
        wrap_model,
    )

    params = ns.wrap_params
    if not needs_mix_set(ns.wrap):
        wrapped = wrap_model(model, ns.wrap, params)
        return wrapped, dict(wrapped.wrapper)
    x, y, described = mix_set(ns.data, ns.split, root=ns.root)
    wrapped = wrap_model(model, ns.wrap, params, (x, y))
    return wrapped, {**wrapped.wrapper, "mix_set": described}
