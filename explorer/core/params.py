"""Typed parameter specs: the single description of every tunable value.

The GUI builds its forms from them, the CLI its flags, the workspace its saved
configs. Validation always names the parameter and its allowed range.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal


class ParamError(ValueError):
    """A parameter value is missing, of the wrong type or out of range."""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its name, type, default, help and allowed values.

    ``unit="px"`` marks a pixel budget in [0, 1]; forms also show it as k/255.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    unit: Literal["", "px"] = ""
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def range_text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.type is bool:
            return "true or false"
        if self.type not in (int, float):
            return "text"
        lo = "-inf" if self.minimum is None else _fmt(self.minimum)
        hi = "inf" if self.maximum is None else _fmt(self.maximum)
        return f"[{lo}, {hi}]"

    def parse(self, text: str) -> Any:
        """Convert user text (CLI flag, form field, saved config) to a value."""
        text = text.strip()
        try:
            if self.type is bool:
                low = text.lower()
                if low in {"1", "true", "yes", "on"}:
                    return True
                if low in {"0", "false", "no", "off"}:
                    return False
                raise ValueError(text)
            if self.type is float:
                # "8/255" is how people write pixel budgets.
                return float(Fraction(text)) if "/" in text else float(text)
            if self.type is int:
                return int(text)
            return self.type(text)
        except (ValueError, ZeroDivisionError):
            raise ParamError(
                f"{self.name} must be {_type_name(self.type)}, got {text!r}"
            ) from None

    def validate(self, value: Any) -> Any:
        """Return the value coerced to the parameter's type, or raise ParamError."""
        if isinstance(value, str) and self.type is not str:
            value = self.parse(value)
        value = self._coerce(value)
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"{self.name} must be {self.range_text()}, got {value!r}")
        if self.type in (int, float):
            if isinstance(value, float) and not math.isfinite(value):
                raise ParamError(f"{self.name} must be a finite number, got {value}")
            too_low = self.minimum is not None and value < self.minimum
            too_high = self.maximum is not None and value > self.maximum
            if too_low or too_high:
                raise ParamError(
                    f"{self.name} must be in {self.range_text()}, got {_fmt(value)}"
                )
        return value

    def _coerce(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, bool):
                return value
        elif self.type is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif self.type is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif isinstance(value, self.type):
            return value
        raise ParamError(
            f"{self.name} must be {_type_name(self.type)}, got {value!r}"
        )


def _type_name(t: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false"}.get(
        t, f"a {t.__name__}"
    )


def _fmt(x: float) -> str:
    return f"{x:g}"


def defaults(params: Iterable[Param]) -> dict[str, Any]:
    return {p.name: p.default for p in params}


def validate(params: Iterable[Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """Fill defaults, reject unknown names, validate each value."""
    params = tuple(params)
    known = {p.name: p for p in params}
    unknown = sorted(set(values) - set(known))
    if unknown:
        allowed = ", ".join(known) or "none"
        raise ParamError(
            f"unknown parameter {unknown[0]!r} (allowed: {allowed})"
        )
    out = {}
    for p in params:
        out[p.name] = p.validate(values[p.name]) if p.name in values else p.default
    return out


def add_flags(parser: argparse.ArgumentParser, params: Iterable[Param]) -> None:
    """Add one ``--flag`` per parameter; values stay strings until validated."""
    for p in params:
        help_text = f"{p.help} (default: {p.default}; {p.range_text()})"
        if p.type is bool:
            parser.add_argument(
                p.flag, dest=p.name, metavar="BOOL", default=None, help=help_text
            )
        else:
            parser.add_argument(p.flag, dest=p.name, default=None, help=help_text)


def add_flag_group(
    parser: argparse.ArgumentParser,
    title: str,
    params: Iterable[Param],
    *,
    prefix: str,
    taken: Iterable[str] = (),
    always: bool = False,
) -> dict[str, Param]:
    """``params`` as flags in a group of their own; return name -> flag.

    A parameter whose name clashes with ``taken`` (the parser's other dests),
    or every one with ``always``, becomes ``--PREFIX-NAME``. Read the values
    back with :func:`given_values`.
    """
    taken = set(taken)
    flags = {p.name: (dataclasses.replace(p, name=f"{prefix}_{p.name}")
                      if always or p.name in taken else p) for p in params}
    add_flags(parser.add_argument_group(title), flags.values())
    return flags


def given_values(flags: dict[str, Param], args: argparse.Namespace,
                 params: Iterable[Param] | None = None) -> dict[str, Any]:
    """Validated values of the flags given on the command line (defaults
    omitted); a bad one raises ParamError naming the flag."""
    originals = {p.name: p for p in params} if params is not None else {}
    given = {}
    for name, flag in flags.items():
        value = getattr(args, flag.name, None)
        if value is None:
            continue
        try:
            given[name] = originals.get(name, flag).validate(value)
        except ParamError as exc:
            raise ParamError(f"{flag.flag}: {exc}") from None
    return given


def values_from_args(
    params: Iterable[Param], args: argparse.Namespace
) -> dict[str, Any]:
    """Validated values for the flags the user gave; defaults for the rest."""
    params = tuple(params)
    given = {
        p.name: getattr(args, p.name)
        for p in params
        if getattr(args, p.name, None) is not None
    }
    return validate(params, given)
