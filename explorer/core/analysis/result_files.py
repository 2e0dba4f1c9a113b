"""Analysis results as ``.npz`` files: written atomically, checked on load.

A result is a flat dict of NumPy arrays plus a ``kind`` naming what it is
(``slice``, ``weights-1d``, ``weights-2d``, ``input``, ``features``,
``channels``) and JSON metadata.
Files are read with ``allow_pickle=False``: the metadata is stored as a
unicode string array, never as a pickled object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.fileio import PARSE_ERRORS, atomic_save, reason
from explorer.core.jobs import Artifact, Done, Event, Snapshot

# The arrays each kind must carry; a file missing one is refused on load.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "slice": ("coords", "pred", "max_prob", "directions", "adv_points", "ball",
              "ball_radius", "image", "label"),
    "weights-1d": ("coords", "loss", "acc"),
    "weights-2d": ("coords", "coords_y", "loss", "acc"),
    "input": ("coords", "coords_y", "loss", "pred", "image", "label"),
    "features": ("clean", "labels", "pred_clean"),
    "channels": ("clean", "adv", "order", "label"),
}
KINDS = tuple(REQUIRED_KEYS)
RESULT = "result"  # label of the Snapshot in which analysis jobs send results


class ResultFileError(ValueError):
    """A result file cannot be written or read; the message names the file."""


def save_npz(path: str | Path, result: dict[str, Any]) -> Path:
    """Write ``result`` (``kind``, arrays, optional ``meta`` dict) to ``path``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ResultFileError(f"{path}: result files must end in .npz")
    kind = result.get("kind")
    if kind not in REQUIRED_KEYS:
        raise ResultFileError(
            f"{path}: result kind must be one of {', '.join(KINDS)}, got {kind!r}"
        )
    _check_keys(path, kind, result)
    arrays: dict[str, np.ndarray] = {"kind": np.array(kind)}
    for key, value in result.items():
        if key in ("kind", "meta"):
            continue
        array = np.asarray(value)
        if array.dtype == object:
            raise ResultFileError(f"{path}: {key!r} is not a numeric or text array")
        arrays[key] = array
    arrays["meta"] = np.array(json.dumps(result.get("meta", {}), default=str))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_save(path, write)


def load_npz(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a result written by :func:`save_npz`; ``kind`` demands that kind."""
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"{path}: no such result file")
    try:
        # From our own open file: np.load leaves its own one open when the
        # archive turns out to be damaged.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except PARSE_ERRORS as exc:
        raise ResultFileError(f"{path}: not a result file ({reason(exc)})") from None
    if "kind" not in arrays:
        raise ResultFileError(f"{path}: not a result file (no 'kind' entry)")
    found = str(arrays.pop("kind"))
    if found not in REQUIRED_KEYS:
        raise ResultFileError(
            f"{path}: unknown result kind {found!r} (known: {', '.join(KINDS)})"
        )
    if kind is not None and found != kind:
        raise ResultFileError(f"{path}: holds a {found!r} result, not {kind!r}")
    meta_text = str(arrays.pop("meta", np.array("{}")))
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError:
        raise ResultFileError(f"{path}: its metadata is not valid JSON") from None
    result: dict[str, Any] = {"kind": found, **arrays, "meta": meta}
    _check_keys(path, found, result)
    return result


def _check_keys(path: Path, kind: str, result: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED_KEYS[kind] if key not in result]
    if missing:
        raise ResultFileError(
            f"{path}: a {kind!r} result needs {', '.join(missing)}"
        )


def saving_result(events: Iterator[Event], path: str | Path,
                  meta: dict[str, Any] | None = None) -> Iterator[Event]:
    """Pass a job's events through; save its ``result`` Snapshot to ``path``
    (with ``meta``), announce it as an Artifact and add ``path`` to Done."""
    saved: Path | None = None
    for event in events:
        if isinstance(event, Snapshot) and event.label == RESULT:
            result = dict(event.arrays)
            if meta:
                result["meta"] = {**result.get("meta", {}), **meta}
            saved = save_npz(path, result)
            yield event
            yield Artifact(result["kind"], saved)
        elif isinstance(event, Done) and saved is not None:
            yield Done({**event.results, "path": str(saved)})
        else:
            yield event
