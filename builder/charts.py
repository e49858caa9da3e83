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
