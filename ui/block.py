"""Block: the block of the stage shown, in the spec's form, as SVG (and SVG, PNG, DOT files)."""

from __future__ import annotations

import gradio as gr

from builder import views
from builder.spec import MAX_STAGES, PRESETS

from .common import (
    DEFAULT_PRESET,
    HEAVY,
    Page,
    clamp_stage,
    graph_error,
    parse_spec_json,
    png_file,
    slug,
    write_output,
)

TITLE, ID = "Block", "block"
API_NAMES = ("block_graph", "block_png")
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
    # its choices follow the spec's stages; an API call may name any stage a spec can have
    page.add("stage", gr.Radio(views.stage_choices(PRESETS[DEFAULT_PRESET]), value=0,
                               label="Stage shown", elem_id="stage"),
             accepts=range(MAX_STAGES))
    graph_view(page, "block")


def hidden(page: Page) -> None:
    """After the tabs: the PNG file both drawings download through."""
    page.add("png_file", gr.File(visible="hidden", elem_id="png-file"))


def block_graph(spec_json, stage) -> dict:
    """The block of one stage in the spec's form: inline SVG, and SVG and DOT files."""
    spec = parse_spec_json(spec_json)
    stage = clamp_stage(spec, stage)
    name = f"{slug(spec)}-conv{stage + 2}-block"
    dot = write_output(f"{name}.dot", views.block_dot(spec, stage))
    try:
        svg = views.block_svg(spec, stage)
    except RuntimeError as exc:  # GraphvizError: the DOT is still offered
        return {"block_html": graph_error(exc), "block_svg": None, "block_dot": dot}
    title = f"{spec.name}, conv{stage + 2} block, form ({spec.form})"
    return {"block_html": views.svg_html(svg, title),
            "block_svg": write_output(f"{name}.svg", svg), "block_dot": dot}


def block_png(spec_json, stage) -> dict:
    """The block graph as PNG (drawn on request)."""
    spec = parse_spec_json(spec_json)
    stage = clamp_stage(spec, stage)
    return {"png_file": png_file(spec, views.block_dot(spec, stage), f"conv{stage + 2}-block")}


def wire(page: Page) -> None:
    # The heavy views follow the last valid spec: an invalid input leaves spec_json as it
    # was, so they keep showing the last valid results.
    page.on(["spec_json.change", "stage.input"], block_graph, ["spec_json", "stage"],
            ["block_html", "block_svg", "block_dot"], api_name="block_graph", **HEAVY)
    page.on("block_png.click", block_png, ["spec_json", "stage"], "png_file",
            api_name="block_png", concurrency_limit=2).then(None, page["png_file"], None,
                                                            js=DOWNLOAD_JS)
