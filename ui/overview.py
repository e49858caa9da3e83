"""Overview: totals against the baseline, the per-stage table, the per-block formula."""

from __future__ import annotations

import gradio as gr

from builder import paper, views
from builder.spec import PRESETS, SpecError

from .common import DEFAULT_PRESET, FAST, Page, error_text, parse_spec_json

TITLE, ID = "Overview", "overview"
API_NAMES = ("overview", "table1")
OUTPUTS = ["overview", "stages", "formula"]


def layout(page: Page) -> None:
    spec0 = PRESETS[DEFAULT_PRESET]
    page.add("overview", gr.Markdown(views.overview_markdown(spec0), elem_id="overview"))
    page.add("stages", gr.Dataframe(views.stage_table(spec0), interactive=False,
                                    label="Per stage", elem_id="stages", max_height=420))
    page.add("formula", gr.Markdown(views.formula_markdown(spec0), elem_id="formula"))
    with gr.Accordion("The paper's Table 1 for this network", open=False, elem_id="table1-box"):
        page.add("table1", gr.Dataframe(paper.table1(spec0), interactive=False, wrap=True,
                                        label="Output size and block shape per stage "
                                        "(the paper's Table 1; its FLOPs are multiply-adds)",
                                        elem_id="table1"))


def overview(spec_json, baseline) -> dict:
    """The Overview tab: totals against the baseline, per-stage table, the per-block
    formula with the numbers filled in. (Apart from the headline, so that the headline
    is drawn first: the table takes the page longer to draw than the server to compute.)"""
    spec = parse_spec_json(spec_json)
    try:
        views.baseline_spec(baseline, spec)  # "auto" or a preset
    except SpecError as exc:
        raise gr.Error(error_text(exc)) from None
    return {"overview": views.overview_markdown(spec, baseline),
            "stages": views.stage_table(spec),
            "formula": views.formula_markdown(spec, baseline)}


def table1(spec_json) -> dict:
    """The paper's Table 1 for this spec: per stage the output size and the block shape,
    `[1x1, 128; 3x3, 128, C=32; 1x1, 256] x 3`; then parameters and multiply-adds."""
    return {"table1": paper.table1(parse_spec_json(spec_json))}


def wire(page: Page) -> None:
    # baseline.change, not .input: a link that sets only the baseline redraws the overview
    page.on(["spec_json.change", "baseline.change"], overview, ["spec_json", "baseline"],
            OUTPUTS, api_name="overview", trigger_mode="always_last", **FAST)
    page.on("spec_json.change", table1, "spec_json", "table1", api_name="table1",
            trigger_mode="always_last", **FAST)
