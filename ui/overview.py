"""Overview: totals against the baseline, the per-stage table, the per-block formula."""

from __future__ import annotations

import gradio as gr

from builder import views
from builder.spec import PRESETS

from .common import DEFAULT_PRESET, FAST, Page, parse_spec_json

TITLE, ID = "Overview", "overview"
API_NAMES = ("overview",)
OUTPUTS = ["overview", "stages", "formula"]


def layout(page: Page) -> None:
    spec0 = PRESETS[DEFAULT_PRESET]
    page.add("overview", gr.Markdown(views.overview_markdown(spec0), elem_id="overview"))
    page.add("stages", gr.Dataframe(views.stage_table(spec0), interactive=False,
                                    label="Per stage", elem_id="stages", max_height=420))
    page.add("formula", gr.Markdown(views.formula_markdown(spec0), elem_id="formula"))


def overview(spec_json, baseline) -> dict:
    """The Overview tab: totals against the baseline, per-stage table, the per-block
    formula with the numbers filled in. (Apart from the headline, so that the headline
    is drawn first: the table takes the page longer to draw than the server to compute.)"""
    spec = parse_spec_json(spec_json)
    if baseline not in PRESETS:
        raise gr.Error(f"baseline: {baseline!r} is not allowed; expected one of "
                       f"{', '.join(PRESETS)}")
    return {"overview": views.overview_markdown(spec, baseline),
            "stages": views.stage_table(spec),
            "formula": views.formula_markdown(spec, baseline)}


def wire(page: Page) -> None:
    # baseline.change, not .input: a link that sets only the baseline redraws the overview
    page.on(["spec_json.change", "baseline.change"], overview, ["spec_json", "baseline"],
            OUTPUTS, api_name="overview", trigger_mode="always_last", **FAST)
