"""Summary: torchinfo's table (with the groups column torchinfo lacks) and its totals."""

from __future__ import annotations

import html

import gradio as gr

from builder import guards, views
from builder.spec import SpecError

from .common import HEAVY, Page, md_text, parse_spec_json

TITLE, ID = "Summary", "summary"
API_NAMES = ("summary",)


def layout(page: Page) -> None:
    page.add("summary_depth", gr.Radio([1, 2, 3, 4], value=3, label="Depth",
                                       info="how deep torchinfo lists modules",
                                       elem_id="summary-depth"))
    page.add("summary_totals", gr.Markdown(elem_id="summary-totals"))
    page.add("summary_table", gr.HTML(elem_id="summary-table"))


def summary(spec_json, depth) -> dict:
    """torchinfo's table (with the groups column) and its totals."""
    from builder.memory import release

    spec = parse_spec_json(spec_json)
    try:  # the guard first: a summary that would take longer than the app allows is refused
        guards.check(spec, work="summary")
        result = views.summary(spec, int(depth or 3))
    except SpecError as exc:  # too big to build, or to summarise in time (builder.guards)
        return {"summary_totals": f"**No summary.** {md_text(exc)}", "summary_table": ""}
    finally:
        release()  # the summary built the model: give its memory back
    table = html.escape(views.summary_text(result), quote=False)
    return {"summary_totals": views.summary_totals(result),
            "summary_table": f'<pre class="summary-table">{table}</pre>'}


def wire(page: Page) -> None:
    page.on(["spec_json.change", "summary_depth.input"], summary,
            ["spec_json", "summary_depth"], ["summary_totals", "summary_table"],
            api_name="summary", **HEAVY)
