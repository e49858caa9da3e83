"""Network: the whole network, one cluster per stage (and its SVG, PNG, DOT files)."""

from __future__ import annotations

from builder import views

from .block import DOWNLOAD_JS, graph_view
from .common import HEAVY, Page, graph_error, parse_spec_json, png_file, slug, write_output

TITLE, ID = "Network", "network"
API_NAMES = ("network_graph", "network_png")


def layout(page: Page) -> None:
    graph_view(page, "network")


def network_graph(spec_json) -> dict:
    """The whole network, one cluster per stage: inline SVG, and SVG and DOT files."""
    spec = parse_spec_json(spec_json)
    name = f"{slug(spec)}-network"
    dot = write_output(f"{name}.dot", views.network_dot(spec))
    try:
        svg = views.network_svg(spec)
    except RuntimeError as exc:  # GraphvizError: the DOT is still offered
        return {"network_html": graph_error(exc), "network_svg": None, "network_dot": dot}
    return {"network_html": views.svg_html(svg, f"{spec.name}, network"),
            "network_svg": write_output(f"{name}.svg", svg), "network_dot": dot}


def network_png(spec_json) -> dict:
    """The network graph as PNG (drawn on request)."""
    spec = parse_spec_json(spec_json)
    return {"png_file": png_file(spec, views.network_dot(spec), "network")}


def wire(page: Page) -> None:
    page.on("spec_json.change", network_graph, "spec_json",
            ["network_html", "network_svg", "network_dot"], api_name="network_graph", **HEAVY)
    page.on("network_png.click", network_png, "spec_json", "png_file", api_name="network_png",
            concurrency_limit=2).then(None, page["png_file"], None, js=DOWNLOAD_JS)
