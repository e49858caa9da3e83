"""Small horizontal bar charts as SVG text: crisp at any zoom, readable on light and dark pages,
and plain enough to test (every bar's label and value is a <text> in the SVG).

    >>> svg = bars_svg("median ms", [("form (a)", 24.0, "24.0 ms"), ("form (c)", 2.5, "2.5 ms")])
    >>> "form (c)" in svg and "2.5 ms" in svg
    True
"""

from __future__ import annotations

from html import escape

# Mid-tone bar colours that keep contrast on white and on near-black backgrounds. Text takes
# the page's own text colour (currentColor): dark on a light page, light on a dark one.
COLORS = ("#6366f1", "#f59e0b", "#10b981", "#ef4444", "#0ea5e9", "#a855f7")
TEXT = "currentColor"


def bars_svg(title: str, rows: list[tuple[str, float, str]], color: str = COLORS[0],
             width: int = 640, bar_height: int = 22, label_width: int = 220) -> str:
    """One bar per row: (label, value >= 0, text shown after the bar). Bars are scaled to the
    largest value; the SVG scales to its container (viewBox, width 100%)."""
    top = 28
    height = top + len(rows) * (bar_height + 8) + 4
    room = width - label_width - 110
    largest = max((v for _, v, _ in rows), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="{escape(title)}" class="bar-chart" '
             f'style="max-width: {width}px; font-family: sans-serif;">',
             f'<text x="0" y="18" font-size="14" font-weight="bold" fill="{TEXT}">'
             f"{escape(title)}</text>"]
    for i, (label, value, text) in enumerate(rows):
        y = top + i * (bar_height + 8)
        length = max(1.0, room * max(value, 0) / largest)
        parts += [
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.7:.1f}" font-size="12" '
            f'text-anchor="end" fill="{TEXT}">{escape(label)}</text>',
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" '
            f'rx="4" fill="{color}"><title>{escape(label)}: {escape(text)}</title></rect>',
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar_height * 0.7:.1f}" '
            f'font-size="12" fill="{TEXT}">{escape(text)}</text>']
    parts.append("</svg>")
    return "".join(parts)


def points_svg(title: str, x_label: str, y_label: str, ticks: list[str], series,
               width: int = 640, height: int = 320) -> str:
    """Values against evenly spaced categories (e.g. C = 1, 2, 4, 8, 32): `series` is a list
    of (name, colour, [(tick index, value, text shown by the point)], join the points).
    The y axis spans the values, not zero up, so differences of tenths stay visible; every
    point carries its value as text, so the chart reads without the axis."""
    left, right, top, bottom = 56, 170, 44, 48
    values = [v for _, _, points, _ in series for _, v, _ in points] or [0.0]
    lo, hi = min(values), max(values)
    step = 0.5 if hi - lo <= 3 else 1.0 if hi - lo <= 8 else 2.0
    lo = (int(lo / step) - (1 if lo % step < step / 2 else 0)) * step
    hi = (int(hi / step) + 1) * step
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / max(len(ticks), 1))

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="{escape(title)}" class="points-chart" '
             f'style="max-width: {width}px; font-family: sans-serif;">',
             f'<text x="0" y="18" font-size="14" font-weight="bold" fill="{TEXT}">'
             f"{escape(title)}</text>",
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{TEXT}" '
             f'stroke-opacity="0.5"/>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
             f'stroke="{TEXT}" stroke-opacity="0.5"/>']
    v = lo
    while v <= hi + 1e-9:
        parts += [f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + plot_w}" y2="{y(v):.1f}" '
                  f'stroke="{TEXT}" stroke-opacity="0.12"/>',
                  f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end" '
                  f'fill="{TEXT}">{v:g}</text>']
        v += step
    for i, tick in enumerate(ticks):
        parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" font-size="12" '
                     f'text-anchor="middle" fill="{TEXT}">{escape(tick)}</text>')
    parts += [f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" font-size="12" '
              f'text-anchor="middle" fill="{TEXT}">{escape(x_label)}</text>',
              f'<text x="14" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
              f'fill="{TEXT}" transform="rotate(-90 14 {top + plot_h / 2:.1f})">'
              f"{escape(y_label)}</text>"]
    for n, (name, color, points, join) in enumerate(series):
        ly = top + 4 + n * 18
        parts += [f'<rect x="{width - right + 14}" y="{ly - 9}" width="10" height="10" '
                  f'fill="{color}"/>',
                  f'<text x="{width - right + 30}" y="{ly}" font-size="11" fill="{TEXT}">'
                  f"{escape(name)}</text>"]
        if join and len(points) > 1:
            path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v, _ in sorted(points))
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                         f'stroke-width="2"/>')
        for i, v, text in points:
            parts += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="5" fill="{color}">'
                      f"<title>{escape(name)}: {escape(text)}</title></circle>",
                      f'<text x="{x(i) + 8:.1f}" y="{y(v) - 7:.1f}" font-size="11" '
                      f'fill="{TEXT}">{escape(text)}</text>']
    parts.append("</svg>")
    return "".join(parts)
