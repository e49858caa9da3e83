"""Block: one block of the stage shown, in the spec's form or the three side by side, as SVG
(and SVG, PNG, DOT files)."""

from __future__ import annotations

import gradio as gr

from builder import views
from builder.registry import FORMS
from builder.spec import DEPTH_RANGE, MAX_STAGES, PRESETS, SpecError

from .common import (
    DEFAULT_PRESET,
    HEAVY,
    Page,
    clamp_stage,
    error_text,
    graph_error,
    parse_spec_json,
    png_file,
    slug,
    write_output,
)

TITLE, ID = "Block", "block"
API_NAMES = ("block_graph", "block_stage", "block_png")
# The PNG is drawn on request (Graphviz takes ~0.2-0.5 s), then downloaded by the browser.
DOWNLOAD_JS = """(file) => {
  if (file && file.url) {
    const a = document.createElement('a');
    a.href = file.url; a.download = file.orig_name || 'graph.png';
    document.body.appendChild(a); a.click(); a.remove();
  }
  return [];
}"""


def graph_view(page: Page, name: str) -> None:
    """A drawing ("{name}_html", elem_id "{name}-svg") and its SVG, PNG and DOT buttons."""
    page.add(f"{name}_html", gr.HTML(elem_id=f"{name}-svg"))
    with gr.Row(elem_classes="downloads"):
        page.add(f"{name}_svg", gr.DownloadButton("SVG", size="sm",
                                                  elem_id=f"{name}-svg-download"))
        page.add(f"{name}_png", gr.Button("PNG", size="sm", elem_id=f"{name}-png"))
        page.add(f"{name}_dot", gr.DownloadButton("DOT", size="sm",
                                                  elem_id=f"{name}-dot-download"))


def layout(page: Page) -> None:
    spec = PRESETS[DEFAULT_PRESET]
    with gr.Row(equal_height=True):
        # its choices follow the spec's stages; an API call may name any stage a spec can have
        page.add("stage", gr.Radio(views.stage_choices(spec), value=0, label="Stage shown",
                                   elem_id="stage"), accepts=range(MAX_STAGES))
        page.add("block_index", gr.Dropdown(
            views.block_choices(spec, 0), value=views.clamp_block(spec, 0, None),
            label="Block shown", info="block 1 strides and projects; the others are alike",
            elem_id="block-index", min_width=260), accepts=range(DEPTH_RANGE[1]))
    page.add("block_forms", gr.Checkbox(False, label="The three forms side by side",
                                        info="the same block in forms (a), (b) and (c)",
                                        elem_id="block-forms"))
    graph_view(page, "block")


def hidden(page: Page) -> None:
    """After the tabs: the PNG file both drawings download through."""
    page.add("png_file", gr.File(visible="hidden", elem_id="png-file"))


def _chosen(spec_json, stage, block_index):
    spec = parse_spec_json(spec_json)
    stage = clamp_stage(spec, stage)
    try:
        index = views.clamp_block(spec, stage, block_index)
    except SpecError as exc:
        raise gr.Error(error_text(views.user_message(exc)), title="Invalid block") from None
    return spec, stage, index


def _name(spec, stage: int, index: int) -> str:
    return f"{slug(spec)}-conv{stage + 2}-block{index + 1}"


def block_graph(spec_json, stage, forms=False, block_index=None) -> dict:
    """One block of a stage (block_index, 0-based; empty: the stage's later block, as the
    paper's Fig. 3 draws, or its only one) in the spec's form, or in the three forms side by
    side: inline SVG, the SVG and DOT files of the spec's form, and the block picker."""
    spec, stage, index = _chosen(spec_json, stage, block_index)
    picker = gr.update(choices=views.block_choices(spec, stage), value=index)
    name = _name(spec, stage, index)
    dot = write_output(f"{name}.dot", views.block_dot(spec, stage, index))
    where = f"conv{stage + 2}, block {index + 1} of {spec.depths[stage]}"
    try:
        svg = views.block_svg(spec, stage, index)
        if forms:
            html = views.svgs_html(
                [(views.block_svg(spec.replace(form=key), stage, index),
                  f"form ({key}): {form.title}") for key, form in FORMS.items()],
                f"{spec.name}, {where}, three forms")
        else:
            html = views.svg_html(svg, f"{spec.name}, {where}, form ({spec.form})")
    except RuntimeError as exc:  # GraphvizError: the DOT is still offered
        return {"block_html": graph_error(exc), "block_svg": None, "block_dot": dot,
                "block_index": picker}
    return {"block_html": html, "block_svg": write_output(f"{name}.svg", svg),
            "block_dot": dot, "block_index": picker}


def block_png(spec_json, stage, block_index=None) -> dict:
    """The block graph as PNG (drawn on request)."""
    spec, stage, index = _chosen(spec_json, stage, block_index)
    return {"png_file": png_file(spec, views.block_dot(spec, stage, index),
                                 f"conv{stage + 2}-block{index + 1}")}


def wire(page: Page) -> None:
    # The heavy views follow the last valid spec: an invalid input leaves spec_json as it
    # was, so they keep showing the last valid results.
    outputs = ["block_html", "block_svg", "block_dot", "block_index"]
    # one queue, one at a time, for the drawing's events: a block picked right after a stage
    # is drawn after that stage's default block, never overwritten by it
    ordered = {**HEAVY, "concurrency_limit": 1, "concurrency_id": "block_view"}
    page.on(["spec_json.change", "block_index.input", "block_forms.input"], block_graph,
            ["spec_json", "stage", "block_forms", "block_index"], outputs,
            api_name="block_graph", **ordered)
    # a new stage shows its default block (Fig. 3's kind)
    page.on("stage.input", block_graph, ["spec_json", "stage", "block_forms"], outputs,
            api_name="block_stage", **ordered)
    page.on("block_png.click", block_png, ["spec_json", "stage", "block_index"], "png_file",
            api_name="block_png", concurrency_limit=2).then(None, page["png_file"], None,
                                                            js=DOWNLOAD_JS)
