"""Recipes: one small TOML file that says how to reproduce a run.

A :class:`Recipe` holds the run's kind (``train``, ``attack``, ``eval`` ...),
the config the run recorded (data, model, method, every parameter, seed), the
versions of the app, torch, torchvision, python and numpy, the device, and
sha256 checksums of the files involved:

* a built-in data set: its ``.npz`` file, hashed whole;
* a data set read from a folder (``root``: torchvision files, an image
  folder): the folder's listing (relative path and size of every file,
  sorted), hashed — reading every byte of a large set on each run would be
  too slow; such a checksum is labelled ``listing-sha256``;
* a model: its file (a built-in's safetensors or the user's file), hashed
  whole. Generated data (the toy sets) and remote models have none.

Every workspace run writes one as ``recipe.toml`` in its folder when it is
created (:meth:`explorer.store.Workspace.create_run`). TOML is read with
``tomllib`` and written by the small writer here (plain types only). TOML has
no null: the key paths of None values are listed in ``nulls``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from explorer.core.params import ParamError

FORMAT = 1
FILENAME = "recipe.toml"
# config keys naming a model (a built-in name or a file)
MODEL_KEYS = ("model", "init_from")
_SECTIONS = ("config", "versions", "checksums")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Recipe:
    """How to reproduce one run (see the module docstring)."""

    kind: str
    config: dict[str, Any]
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    checksums: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    format: int = FORMAT

    def to_toml(self) -> str:
        return dumps(self)


def current_versions() -> dict[str, str]:
    """The versions a run depends on, here and now."""
    import numpy
    import torch

    from explorer import __version__

    try:  # its metadata: importing it would cost a second where it is unused
        vision = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        vision = "absent"
    return {"explorer": __version__, "torch": torch.__version__,
            "torchvision": vision, "python": platform.python_version(),
            "numpy": numpy.__version__}


def build(kind: str, config: Mapping[str, Any], device: str = "") -> Recipe:
    """The recipe of a run of ``kind`` with ``config``, checksummed now."""
    return Recipe(kind=kind, config=json.loads(json.dumps(dict(config))),
                  versions=current_versions(), device=str(device or ""),
                  checksums=checksums(config))


def from_stored(kind: str, config: Mapping[str, Any]) -> Recipe:
    """The recipe of a run stored before recipes existed: its config only."""
    return Recipe(kind=kind, config=json.loads(json.dumps(dict(config))),
                  device=str(config.get("device", "") or ""),
                  notes=["built from a run stored before recipes existed: the "
                         "versions and checksums of that run are missing"])


# --- checksums -------------------------------------------------------------

_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes (cached by path, size and mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _CACHE[key] = "sha256:" + digest.hexdigest()
    return _CACHE[key]


def listing_sha256(folder: Path) -> str:
    """``listing-sha256:<hex>`` of a folder's files: relative path and size."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            lines.append(f"{path.relative_to(folder).as_posix()}\t{size}\n")
    return "listing-sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def checksums(config: Mapping[str, Any]) -> dict[str, str]:
    """The checksums of the data and model files ``config`` names (label →
    checksum): ``data`` and ``model`` / ``init_from`` / ``model NAME`` (each of
    an evaluation's ``models``), where there are files."""
    found: dict[str, str] = {}
    data = _data_file(config)
    if data is not None:
        found["data"] = data
    named = {key: config.get(key) for key in MODEL_KEYS}
    several = config.get("models")  # an evaluation's: name -> source
    if isinstance(several, Mapping):
        named.update({f"model {name}": source for name, source in several.items()})
    for label, name in named.items():
        if isinstance(name, str) and name:
            path = _model_file(name)
            if path is not None:
                found[label] = file_sha256(path)
    return found


def _data_file(config: Mapping[str, Any]) -> str | None:
    name = config.get("data")
    if not isinstance(name, str):
        return None
    from explorer.core.data import registry
    from explorer.core.data.base import DataError

    try:
        kind = registry.info(name).kind
    except DataError:  # an unknown set has nothing to hash
        return None
    if kind == "builtin":
        from explorer.core.data.builtin import FILENAME as NPZ
        from explorer.core.resources import resource_path

        path = resource_path(NPZ)
        return file_sha256(path) if path.is_file() else None
    root = config.get("root")
    if isinstance(root, str) and root and Path(root).expanduser().is_dir():
        return listing_sha256(Path(root).expanduser())
    return None


def _model_file(name: str) -> Path | None:
    from explorer.core.models.builtin import BUILTINS
    from explorer.core.resources import resource_path

    if name in BUILTINS:
        path = resource_path("models", f"{name}.safetensors")
        return path if path.is_file() else None
    path = Path(name).expanduser()
    return path if path.is_file() else None


def differences(recipe: Recipe, device: str, current: Recipe | None = None
                ) -> list[str]:
    """What differs between ``recipe`` and here: one line per version, the
    device and each checksum (``current``: the recipe built here, for tests)."""
    here = current or build(recipe.kind, recipe.config, device)
    lines = []
    if not recipe.versions:
        lines.append("the recipe records no versions (a run from before "
                     "recipes existed)")
    for name, value in recipe.versions.items():
        now = here.versions.get(name, "absent")
        if now != value:
            lines.append(f"{name} version differs: recipe {value}, here {now}")
    if recipe.device and here.device and recipe.device != here.device:
        lines.append(f"device differs: recipe {recipe.device}, here {here.device}")
    if not recipe.checksums and recipe.notes:
        lines.append("the recipe records no checksums: the data and model files "
                     "are not checked")
    for label, value in recipe.checksums.items():
        now = here.checksums.get(label)
        if now is None:
            lines.append(f"{label} checksum differs: recipe {value}, here no file "
                         f"to check")
        elif now != value:
            lines.append(f"{label} checksum differs: recipe {value}, here {now}")
    return lines


# --- TOML ------------------------------------------------------------------


def dumps(recipe: Recipe) -> str:
    """The recipe as TOML (``loads`` reads it back equal)."""
    nulls: list[list[Any]] = []
    head = {"kind": recipe.kind, "format": recipe.format, "device": recipe.device,
            "notes": list(recipe.notes)}
    lines = [f"{_key(k)} = {_value(v, [k], nulls)}" for k, v in head.items()]
    body: list[str] = []
    for section in _SECTIONS:
        table = getattr(recipe, section)
        body.append(f"\n[{section}]")
        for key, value in table.items():
            if value is None:
                nulls.append([section, key])
                continue
            body.append(f"{_key(key)} = {_value(value, [section, key], nulls)}")
    lines.append(f"nulls = {_value(nulls, ['nulls'], [])}")
    return "\n".join(lines + body) + "\n"


def loads(text: str, source: str = "recipe") -> Recipe:
    """Read a recipe; a bad one raises ParamError naming ``source``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParamError(f"{source}: not a TOML file ({exc})") from None
    missing = [k for k in ("kind", "config") if k not in raw]
    if missing:
        raise ParamError(f"{source}: not a recipe, missing key "
                         f"{', '.join(repr(k) for k in missing)}")
    for path in raw.pop("nulls", []):
        if not (isinstance(path, list) and path and all(isinstance(p, str | int)
                                                        for p in path)):
            raise ParamError(f"{source}: bad nulls entry {path!r}")
        _set_null(raw, path, source)
    if not isinstance(raw["kind"], str) or not isinstance(raw["config"], dict):
        raise ParamError(f"{source}: 'kind' must be a string and [config] a table")
    known = {f.name for f in dataclasses.fields(Recipe)}
    extra = sorted(set(raw) - known)
    if extra:
        raise ParamError(f"{source}: unknown key {', '.join(map(repr, extra))}")
    try:
        return Recipe(**raw)
    except TypeError as exc:
        raise ParamError(f"{source}: {exc}") from None


def read(path: str | os.PathLike[str]) -> Recipe:
    """A recipe file; unreadable or bad: ParamError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamError(f"{path}: cannot read the recipe ({exc})") from None
    return loads(text, str(path))


def write(recipe: Recipe, path: str | os.PathLike[str]) -> Path:
    from explorer.core.fileio import atomic_write_text

    path = Path(path)
    atomic_write_text(path, dumps(recipe))
    return path


def _set_null(raw: dict[str, Any], path: list[str | int], source: str) -> None:
    """Set the value at ``path`` (keys of tables, indices of lists) to None."""
    node: Any = raw
    for part in path[:-1]:
        in_table = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = (isinstance(node, list) and isinstance(part, int)
                   and 0 <= part < len(node))
        if in_table or in_list:
            node = node[part]
        else:
            raise ParamError(f"{source}: bad nulls entry {path!r}")
    if not (isinstance(node, dict) and isinstance(path[-1], str)):
        raise ParamError(f"{source}: bad nulls entry {path!r}")
    node[path[-1]] = None


def _key(key: Any) -> str:
    text = str(key)
    return text if _BARE.fullmatch(text) else _string(text)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, path: list[Any], nulls: list[list[Any]]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        if any(v is None for v in value):
            raise ParamError(f"recipe value {_dotted(path)}: a list cannot hold "
                             "None in TOML")
        return "[" + ", ".join(_value(v, [*path, i], nulls)
                               for i, v in enumerate(value)) + "]"
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if item is None:
                nulls.append([*path, str(key)])
                continue
            items.append(f"{_key(key)} = {_value(item, [*path, str(key)], nulls)}")
        return "{" + ", ".join(items) + "}"
    raise ParamError(f"recipe value {_dotted(path)}: {type(value).__name__} "
                     "cannot be written as TOML")


def _dotted(path: list[Any]) -> str:
    return ".".join(map(str, path))
