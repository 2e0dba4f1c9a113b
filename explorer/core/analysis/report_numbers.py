"""The numbers of an evaluation as CSV (long format) and JSON, atomically.

``results`` takes the shapes :mod:`explorer.core.analysis.report` accepts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.fileio import atomic_write_text

CSV_FIELDS = ("model", "metric", "eps", "value")


def model_entries(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The per-model dicts of any accepted results shape."""
    entries = results.get("models")
    if isinstance(entries, list):
        return entries
    return [results]


def model_name(entry: Mapping[str, Any], i: int) -> str:
    return str(entry.get("model", f"model {i + 1}"))


def versions() -> dict[str, str]:
    import torch

    from explorer import __version__

    return {"explorer": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__,
            "platform": platform.platform(terse=True)}


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: arrays to lists, non-finite floats to None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "as_dict"):
        return to_jsonable(obj.as_dict())
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def write_json(results: Mapping[str, Any], path: str | Path) -> Path:
    """All numbers as JSON; pixel arrays of the examples are left out."""
    out = dict(results)
    if isinstance(out.get("examples"), Mapping):
        out["examples"] = {k: v for k, v in out["examples"].items()
                           if k not in ("x", "x_adv")}
    out["versions"] = versions()
    return atomic_write_text(path, json.dumps(to_jsonable(out), indent=2) + "\n")


def csv_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Long format: one row per (model, metric[, eps]) number."""
    rows: list[dict[str, Any]] = []
    for i, e in enumerate(model_entries(results)):
        name = model_name(e, i)

        def add(metric: str, value: Any, eps: Any = "", model: str = name) -> None:
            if isinstance(value, int | float) and not isinstance(value, bool):
                rows.append({"model": model, "metric": metric, "eps": eps,
                             "value": float(value)})

        for key in ("clean_acc", "robust_acc", "union_acc", "avg_acc"):
            add(key, e.get(key))
        for label, value in (e.get("per_attack") or {}).items():
            add(f"per_attack:{label}", value)
        for norm, value in (e.get("per_threat") or {}).items():
            add(f"per_threat:{norm}", value)
        sweep = e.get("sweep") or {}
        for eps, value in zip(sweep.get("eps", []), sweep.get("robust_acc", []),
                              strict=True):
            add("sweep_robust_acc", value, float(eps))
        for c in e.get("checks") or []:
            add(f"check:{c.get('key') or c.get('name')}", float(bool(c["passed"])))
        add("seconds", e.get("total_seconds", e.get("seconds")))
    return rows


def write_csv(results: Mapping[str, Any], path: str | Path) -> Path:
    """The numbers of :func:`csv_rows`; floats written exactly (repr)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(results):
        writer.writerow({k: repr(v) if isinstance(v, float) else v
                         for k, v in row.items()})
    return atomic_write_text(path, buf.getvalue())
