"""Evaluation reports: one self-contained HTML file, plus CSV and JSON numbers.

``results`` is what :func:`explorer.core.analysis.compare.compare_job` returns,
what ``explorer eval --suite`` prints for several models (``{"models": [...]}``)
or one model's results dict. The HTML page needs nothing else: CSS inline,
charts as inline SVG (:mod:`report_svg`), example images as base64 PNG, and
no link to any other file or site. All files are written atomically.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.analysis.report_numbers import (
    model_entries,
    model_name,
    to_jsonable,
    versions,
    write_csv,
    write_json,
)
from explorer.core.analysis.report_svg import bar_chart, line_chart
from explorer.core.fileio import atomic_write_text

__all__ = ["write_all", "write_csv", "write_html", "write_json"]
REPORT_FILES = ("report.html", "results.csv", "results.json")
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;
max-width:1100px;color:#222;padding:0 16px}
h1{font-size:24px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;font-size:13px}
th{background:#f3f3f3}td.name,th.name{text-align:left}
td.best{font-weight:700;background:#e4f4e4}
.chart{width:100%;max-width:760px;font-size:12px;font-family:inherit}
.chart .axis{font-size:13px}.chart .small{font-size:10px}
.pass{color:#1b7f2a;font-weight:700}.warn{color:#b26a00;font-weight:700}
.examples td{text-align:center;font-size:11px}
.examples img{width:84px;height:84px;image-rendering:pixelated;display:block;
margin:auto}.fooled{color:#c62828}.held{color:#1b7f2a}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}
.muted{color:#666;font-size:13px}
"""


def table_columns(entries: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(heading, key) pairs; a key ``per_attack:LABEL`` reads that stage."""
    cols = [("clean", "clean_acc")]
    labels: list[str] = []
    for e in entries:
        labels += [k for k in e.get("per_attack", {}) if k not in labels]
    cols += [(label, f"per_attack:{label}") for label in labels]
    if any("robust_acc" in e for e in entries):
        cols.append(("robust (final)", "robust_acc"))
    if any("union_acc" in e for e in entries):
        cols += [("union", "union_acc"), ("average", "avg_acc")]
    return cols


def cell(entry: Mapping[str, Any], key: str) -> float:
    """A column's value for one model (NaN when it has none)."""
    if key.startswith("per_attack:"):
        value = entry.get("per_attack", {}).get(key.split(":", 1)[1])
    else:
        value = entry.get(key)
    return float(value) if isinstance(value, int | float) else float("nan")


def best_rows(entries: Sequence[Mapping[str, Any]], key: str) -> set[int]:
    """Rows holding the column's highest accuracy (ties all count)."""
    values = [cell(e, key) for e in entries]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return set()
    top = max(finite)
    return {i for i, v in enumerate(values) if math.isfinite(v) and v >= top - 1e-12}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%" if math.isfinite(value) else "–"


def png_data_uri(image: np.ndarray) -> str:
    """C×H×W or H×W float image in [0, 1] → a base64 PNG ``data:`` URI."""
    from PIL import Image

    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
    pixels = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _results_table(entries) -> str:
    cols = table_columns(entries)
    best = {key: best_rows(entries, key) for _, key in cols}
    head = "".join(f"<th>{escape(h)}</th>" for h, _ in cols)
    rows = []
    for i, e in enumerate(entries):
        cells = "".join(
            f'<td class="best">{_pct(cell(e, key))} ★</td>' if i in best[key]
            else f"<td>{_pct(cell(e, key))}</td>" for _, key in cols)
        rows.append(f'<tr><td class="name">{escape(model_name(e, i))}</td>{cells}'
                    f'<td>{e.get("n", "–")}</td></tr>')
    return (f'<table class="results"><tr><th class="name">model</th>{head}'
            f"<th>images</th></tr>{''.join(rows)}</table>"
            '<p class="muted">Accuracy in % of the evaluated images; ★ and bold '
            "mark the best value of each column. An attack's column is the "
            "robust accuracy after that stage of the cascade.</p>")


def _charts(entries) -> str:
    names = [model_name(e, i) for i, e in enumerate(entries)]
    parts = [bar_chart(names, {
        "clean": [100 * cell(e, "clean_acc") for e in entries],
        "robust": [100 * cell(e, "robust_acc") for e in entries]},
        title="Clean and robust accuracy per model", y_label="accuracy (%)")]
    curves = {n: (e["sweep"]["eps"], [100 * a for a in e["sweep"]["robust_acc"]])
              for n, e in zip(names, entries, strict=True) if e.get("sweep")}
    if curves:
        attack = next(e["sweep"].get("attack", "") for e in entries if e.get("sweep"))
        parts.append(line_chart(curves, title=f"Accuracy vs eps ({attack}, l-inf)",
                                x_label="eps (pixel units, l-inf; 1 = full range)",
                                y_label="accuracy (%)"))
    captions = ["Clean and robust (final) accuracy per model",
                "Accuracy against the l-inf budget, per model"]
    return "".join(f"<figure>{p}<figcaption class='muted'>{c}</figcaption></figure>"
                   for p, c in zip(parts, captions, strict=False))


def _checks(entries) -> str:
    rows = []
    for i, e in enumerate(entries):
        for c in e.get("checks") or []:
            mark = ('<span class="pass">✔ pass</span>' if c.get("passed") else
                    '<span class="warn">⚠ warning</span>')
            rows.append(f'<tr><td class="name">{escape(model_name(e, i))}</td>'
                        f'<td class="name">{escape(str(c.get("name", "")))}</td>'
                        f"<td>{mark}</td>"
                        f'<td class="name">{escape(str(c.get("value_text", "")))}</td>'
                        f'<td class="name">{escape(str(c.get("explanation", "")))}'
                        "</td></tr>")
    if not rows:
        return "<p class='muted'>No gradient-masking checks were run.</p>"
    return ('<table><tr><th class="name">model</th><th class="name">check</th>'
            '<th>verdict</th><th class="name">measured</th><th class="name">'
            f"what it means</th></tr>{''.join(rows)}</table>")


def _examples(results: Mapping[str, Any]) -> str:
    ex = results.get("examples") or {}
    if "x" not in ex or not ex.get("x_adv"):
        return "<p class='muted'>No adversarial examples were kept.</p>"
    classes = list(results.get("classes") or [])

    def label(k: int) -> str:
        return escape(classes[k] if 0 <= k < len(classes) else str(k))

    ys = [int(v) for v in ex["y"]]
    clean = "".join(f'<td><img alt="clean image {j}" src="{png_data_uri(img)}">'
                    f"{label(ys[j])}</td>" for j, img in enumerate(ex["x"]))
    rows = [f'<tr><th class="name">clean (true class)</th>{clean}</tr>']
    for name, images in ex["x_adv"].items():
        preds = [int(p) for p in ex["pred_adv"][name]]
        tds = "".join(
            f'<td><img alt="{escape(name)} image {j}" src="{png_data_uri(img)}">'
            f'<span class="{"held" if preds[j] == ys[j] else "fooled"}">'
            f"{label(ys[j])} → {label(preds[j])}</span></td>"
            for j, img in enumerate(images))
        rows.append(f'<tr><th class="name">{escape(name)}</th>{tds}</tr>')
    return (f"<p class='muted'>The same images attacked by "
            f"{escape(str(ex.get('attack', 'the first attack')))} under each "
            "model; captions read true → predicted (red: fooled).</p>"
            f'<table class="examples">{"".join(rows)}</table>')


def _settings(results: Mapping[str, Any], entries) -> dict[str, Any]:
    keep = ("suite", "eps", "n", "data", "split", "sweep_attack", "sweep_steps",
            "check_n", "seconds")
    out = {k: results[k] for k in keep if k in results}
    out.update(results.get("config") or {})
    out["per_model"] = {
        model_name(e, i): {k: e[k] for k in ("eps", "attacked", "seconds",
                                        "total_seconds", "run_id", "device")
                      if k in e} for i, e in enumerate(entries)}
    return out


def render_html(results: Mapping[str, Any], title: str = "Robustness evaluation",
                when: dt.datetime | None = None) -> str:
    entries = model_entries(results)
    when = when or dt.datetime.now().astimezone()
    info = versions()
    meta = ", ".join(f"{k} {escape(v)}" for k, v in info.items())
    settings = escape(json.dumps(to_jsonable(_settings(results, entries)),
                                 indent=2, sort_keys=True))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class='muted'>Written "
            f"{when.strftime('%Y-%m-%d %H:%M %Z')} · {meta}</p>"
            f"<h2>Results</h2>{_results_table(entries)}"
            f"<h2>Charts</h2>{_charts(entries)}"
            f"<h2>Gradient-masking checks</h2>{_checks(entries)}"
            f"<h2>Adversarial examples</h2>{_examples(results)}"
            f"<h2>Configuration</h2><pre>{settings}</pre></body></html>\n")


def write_html(results: Mapping[str, Any], path: str | Path, *,
               title: str = "Robustness evaluation") -> Path:
    """Write the self-contained report; returns its path."""
    return atomic_write_text(path, render_html(results, title))


def write_all(results: Mapping[str, Any], folder: str | Path) -> list[Path]:
    """``report.html``, ``results.csv`` and ``results.json`` in ``folder``."""
    html, csv_path, json_path = (Path(folder) / name for name in REPORT_FILES)
    return [write_html(results, html), write_csv(results, csv_path),
            write_json(results, json_path)]
