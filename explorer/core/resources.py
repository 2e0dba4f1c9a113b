"""Where the bundled data, weights and icons live."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def resources_dir() -> Path:
    """``explorer/resources/``: package data, so a wheel installed anywhere
    has its data set and models (found through ``importlib.resources``).

    ``EXPLORER_RESOURCES`` overrides it, e.g. for a frozen desktop bundle.
    """
    override = os.environ.get("EXPLORER_RESOURCES")
    if override:
        return Path(override)
    return Path(str(files("explorer").joinpath("resources")))


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def builtin_weights(kind: str, recipes: dict[str, tuple[str, str]], name: str,
                    error: type[Exception]) -> Path:
    """The shipped weights file of built-in ``name`` in ``explorer/resources/models/``.

    ``recipes`` maps each name to (what it is, the command that rebuilds its
    file); an unknown name or a missing file raises ``error`` saying which
    names exist or how to rebuild it. ``kind`` names the thing in messages.
    """
    if name not in recipes:
        known = ", ".join(present_builtins(recipes)) or "none installed"
        raise error(f"unknown built-in {kind} {name!r} (available: {known})")
    path = _weights(name)
    if not path.is_file():
        raise error(f"built-in {kind} {name!r}: weights file {path} is missing; "
                    f"rebuild it with `python {recipes[name][1]}`")
    return path


def present_builtins(recipes: dict[str, tuple[str, str]]) -> list[str]:
    """The built-ins of ``recipes`` whose weights file is present."""
    return [name for name in recipes if _weights(name).is_file()]


def _weights(name: str) -> Path:
    return resource_path("models", f"{name}.safetensors")
