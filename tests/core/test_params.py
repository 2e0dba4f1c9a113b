"""Parameter specs: validation messages name the parameter and its range."""

from __future__ import annotations

import argparse

import pytest

from explorer.core.params import (
    Param,
    ParamError,
    add_flags,
    validate,
    values_from_args,
)

EPS = Param("eps", float, 0.1, "budget", minimum=0.0, maximum=1.0, unit="px")
STEPS = Param("steps", int, 10, "iterations", minimum=1, maximum=1000)
NORM = Param("norm", str, "linf", "threat model", choices=("linf", "l2", "l1"))
RANDOM = Param("random_start", bool, True, "start inside the ball")
PARAMS = (EPS, STEPS, NORM, RANDOM)


def test_defaults_fill_in():
    assert validate(PARAMS, {}) == {"eps": 0.1, "steps": 10, "norm": "linf",
                                    "random_start": True}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"eps": -0.1}, "eps must be in [0, 1], got -0.1"),
        ({"eps": 2}, "eps must be in [0, 1], got 2"),
        ({"steps": 0}, "steps must be in [1, 1000], got 0"),
        ({"steps": 2.5}, "steps must be an integer, got 2.5"),
        ({"norm": "l3"}, "norm must be one of linf, l2, l1, got 'l3'"),
        ({"random_start": "maybe"}, "random_start must be true or false"),
        ({"eps": float("nan")}, "eps must be a finite number"),
        ({"epz": 0.1}, "unknown parameter 'epz'"),
        ({"eps": "abc"}, "eps must be a number, got 'abc'"),
        ({"eps": "1/0"}, "eps must be a number, got '1/0'"),
    ],
)
def test_bad_values_are_named(values, message):
    with pytest.raises(ParamError) as info:
        validate(PARAMS, values)
    assert message in str(info.value)


def test_fractions_and_strings_parse():
    out = validate(PARAMS, {"eps": "8/255", "steps": "20", "random_start": "no"})
    assert out["eps"] == pytest.approx(8 / 255)
    assert out["steps"] == 20
    assert out["random_start"] is False


def test_cli_flags_round_trip():
    parser = argparse.ArgumentParser()
    add_flags(parser, PARAMS)
    assert values_from_args(PARAMS, parser.parse_args([])) == validate(PARAMS, {})
    args = parser.parse_args(["--eps", "4/255", "--norm", "l2", "--random-start", "0"])
    out = values_from_args(PARAMS, args)
    assert out["eps"] == pytest.approx(4 / 255)
    assert out["norm"] == "l2"
    assert out["random_start"] is False
    help_text = parser.format_help()
    assert "default: 0.1" in help_text
    assert "[0, 1]" in help_text
