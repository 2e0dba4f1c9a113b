"""Inline SVG charts for the HTML report: no plotting library, no external file.

Charts are drawn in a fixed view box and scale with the page. Axis ticks are
"nice" numbers (1, 2, 2.5 or 5 times a power of ten); every chart names its
axes with units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 170, 28, 52  # margins; the legend sits right


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About ``count`` round values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks, value = [], first
    while value <= hi + step * 1e-6:
        if value >= lo - step * 1e-6:
            ticks.append(round(value, 12))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class _Frame:
    """Maps data coordinates into the plot area and draws axes with ticks."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]):
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.w = WIDTH - LEFT - RIGHT
        self.h = HEIGHT - TOP - BOTTOM

    def px(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (x - self.x0) / span * self.w

    def py(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return TOP + self.h - (y - self.y0) / span * self.h

    def axes(self, x_ticks, y_ticks, x_label: str, y_label: str,
             x_names: Sequence[str] | None = None) -> list[str]:
        out = [f'<rect x="{LEFT}" y="{TOP}" width="{self.w}" height="{self.h}" '
               'fill="none" stroke="#999"/>']
        for t in y_ticks:
            y = self.py(t)
            out.append(f'<line x1="{LEFT}" x2="{LEFT + self.w}" y1="{y:.1f}" '
                       f'y2="{y:.1f}" stroke="#e3e3e3"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                       f'{_fmt(t)}</text>')
        for i, t in enumerate(x_ticks):
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + self.h}" '
                       f'y2="{TOP + self.h + 5}" stroke="#666"/>')
            name = x_names[i] if x_names is not None else _fmt(t)
            out.append(f'<text x="{x:.1f}" y="{TOP + self.h + 18}" '
                       f'text-anchor="middle">{escape(name)}</text>')
        out.append(f'<text x="{LEFT + self.w / 2:.1f}" y="{HEIGHT - 10}" '
                   f'text-anchor="middle" class="axis">{escape(x_label)}</text>')
        out.append(f'<text transform="translate(16 {TOP + self.h / 2:.1f}) '
                   f'rotate(-90)" text-anchor="middle" class="axis">'
                   f'{escape(y_label)}</text>')
        return out


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = TOP + 8 + 18 * i
        x = WIDTH - RIGHT + 14
        color = COLORS[i % len(COLORS)]
        out.append(f'<rect x="{x}" y="{y - 8}" width="14" height="4" '
                   f'fill="{color}"/>')
        short = name if len(name) <= 22 else name[:21] + "…"
        out.append(f'<text x="{x + 20}" y="{y - 2}">{escape(short)}</text>')
    return out


def _svg(title: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} '
            f'{HEIGHT}" role="img" aria-label="{escape(title)}" class="chart">'
            f'<title>{escape(title)}</title>' + "".join(body) + "</svg>")


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], *,
               title: str, x_label: str, y_label: str,
               y_range: tuple[float, float] = (0.0, 100.0)) -> str:
    """One polyline with markers per named series (x, y)."""
    xs = [x for xv, _ in series.values() for x in xv]
    x_hi = max(xs) if xs else 1.0
    x_ticks = nice_ticks(0.0, x_hi or 1.0)
    frame = _Frame((0.0, max(x_ticks[-1], x_hi or 1.0)), y_range)
    body = frame.axes(x_ticks, nice_ticks(*y_range), x_label, y_label)
    for i, (xv, yv) in enumerate(series.values()):
        color = COLORS[i % len(COLORS)]
        points = [(frame.px(x), frame.py(y)) for x, y in zip(xv, yv, strict=True)
                  if math.isfinite(y)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                        'stroke-width="2"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>'
                    for x, y in points)
    body.extend(_legend(list(series)))
    return _svg(title, body)


def bar_chart(groups: Sequence[str], bars: dict[str, Sequence[float]], *,
              title: str, y_label: str,
              y_range: tuple[float, float] = (0.0, 100.0)) -> str:
    """Grouped bars: one group per entry of ``groups`` (e.g. models), one bar
    per key of ``bars`` (e.g. clean and robust accuracy) in each group."""
    n = max(len(groups), 1)
    frame = _Frame((0.0, float(n)), y_range)
    centres = [i + 0.5 for i in range(n)]
    names = [g if len(g) <= 20 else g[:19] + "…" for g in groups]
    body = frame.axes(centres, nice_ticks(*y_range), "model", y_label, names)
    slot = frame.w / n * 0.8 / max(len(bars), 1)
    for j, values in enumerate(bars.values()):
        color = COLORS[j % len(COLORS)]
        for i, value in enumerate(values):
            if not math.isfinite(value):
                continue
            x = frame.px(i + 0.1) + j * slot
            y = frame.py(value)
            height = frame.py(y_range[0]) - y
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
                        f'height="{max(height, 0):.1f}" fill="{color}">'
                        f'<title>{escape(groups[i])}: {value:.1f}</title></rect>')
            body.append(f'<text x="{x + slot / 2 - 1:.1f}" y="{y - 4:.1f}" '
                        f'text-anchor="middle" class="small">{value:.1f}</text>')
    body.extend(_legend(list(bars)))
    return _svg(title, body)
