"""Bar charts as SVG markup written in Python: no script, no asset from another host. Pure.

Each chart is an `<svg role="img">` with a title and a description that says its numbers, so a
screen reader hears what a sighted reader sees; the page shows the same figures in a table.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 34, 40
COLOURS = ("#1f4fbf", "#8a5a00", "#0f6b34")  # dark enough for text on white (WCAG AA)

Series = tuple[str, Sequence[float | None]]


def nice_ceiling(value: float) -> float:
    """A round number at or above `value` for the top of the axis: 1, 2, 5 × 10^n."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


def short(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def bar_chart(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Grouped bars: one group per label, one bar per series (None: nothing happened)."""
    e = html.escape
    values = [v for _, vs in series for v in vs if v is not None]
    top = nice_ceiling(max(values, default=0))
    plot_w, plot_h = float(WIDTH - LEFT - RIGHT), float(HEIGHT - TOP - BOTTOM)
    group = plot_w / max(1, len(labels))
    bar = max(2.0, group * 0.8 / max(1, len(series)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" class="chart">',
        f'<title id="{chart_id}-t">{e(title)}</title>',
        f'<desc id="{chart_id}-d">{e(describe(labels, series))}</desc>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#4d5561"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" font-size="14" fill="#1b1f24">'
        f"{e(short(top))}</text>",
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="14" '
        'fill="#1b1f24">0</text>',
    ]
    for i, (name, _) in enumerate(series):  # the legend, along the top
        at = LEFT + i * 150
        parts.append(
            f'<rect x="{at}" y="6" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>'
            f'<text x="{at + 17}" y="17" font-size="14" fill="#1b1f24">{e(name)}</text>'
        )
    every = max(1, math.ceil(len(labels) / 7))  # at most seven labels under the axis
    for g, label in enumerate(labels):
        x0 = LEFT + g * group + group * 0.1
        for s, (_, vs) in enumerate(series):
            value = vs[g]
            if value is None or value <= 0:
                continue
            h = plot_h * value / top
            x, y = x0 + s * bar, TOP + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[s % len(COLOURS)]}"/>'
            )
        if (len(labels) - 1 - g) % every == 0:  # the latest period always labelled
            parts.append(
                f'<text x="{LEFT + g * group + group / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle" font-size="14" fill="#1b1f24">{e(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def describe(labels: Sequence[str], series: Sequence[Series]) -> str:
    """The chart's numbers in words: "Mon 23 Nov: calls 4, abandoned 1; …"."""
    days = []
    for g, label in enumerate(labels):
        said = ", ".join(
            f"{name} {'none' if (v := vs[g]) is None else short(v)}" for name, vs in series
        )
        days.append(f"{label}: {said}")
    return "; ".join(days)
