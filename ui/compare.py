"""Compare: pinned configurations side by side (kept in the browser), and the paper's
Table 2 sweep (C in {1, 2, 4, 8, 32} at matched complexity)."""

from __future__ import annotations

import json

import gradio as gr

from builder import compare, paper
from builder.spec import SpecError

from .common import FAST, Page, browser_secret, error_text, parse_spec_json, user_error

TITLE, ID = "Compare", "compare"
API_NAMES = ("pin", "sweep", "clear_pins", "restore_pins", "compare")
INPUTS = ["spec_json", "pins_json", "last_times"]
OUTPUTS = ["pins_json", "pins_store", "compare_table", "compare_chart"]


def layout(page: Page) -> None:
    gr.Markdown("Pin configurations to compare them; pins stay in this browser across "
                "reloads. The sweep reproduces the paper's Table 2: C in {1, 2, 4, 8, 32} with "
                "d solved so that every block keeps the complexity of the C=1, d=64 one.",
                elem_id="compare-intro")
    with gr.Row():
        page.add("pin", gr.Button("Pin this configuration", variant="primary", elem_id="pin"))
        page.add("sweep", gr.Button("Sweep C ∈ {1, 2, 4, 8, 32} at matched complexity",
                                    elem_id="sweep"))
        page.add("clear_pins", gr.Button("Clear pins", variant="stop", elem_id="clear-pins"))
    page.add("compare_table", gr.Dataframe(headers=compare.HEADERS, interactive=False,
                                           label="Pinned", elem_id="compare-table", wrap=True))
    page.add("compare_chart", gr.HTML(elem_id="compare-chart"))
    with gr.Accordion("The paper's results: Tables 3, 4 and 7", open=True,
                      elem_id="paper-results"):
        gr.Markdown("Table 3 keeps the complexity fixed and trades width for cardinality: "
                    "error falls as C rises. Table 4 doubles ResNet-101's complexity and "
                    "spends it on depth, width or cardinality: cardinality buys the most. "
                    "A pinned network gets the paper's error wherever its architecture "
                    "(C, d, depths, block, stem, stride, crop) is one the paper trained.",
                    elem_id="paper-intro")
        gr.HTML(paper.table3_chart(), elem_id="table3-chart")  # one above the other: each
        gr.HTML(paper.table4_chart(), elem_id="table4-chart")  # at its full 640 px
        gr.Dataframe(paper.table(), interactive=False, wrap=True, elem_id="paper-table",
                     label="Every row of the paper's Tables 3, 4 and 7 (error in %)")


def hidden(page: Page) -> None:
    """After the tabs: the pins as JSON, and their copy kept in the browser."""
    page.add("pins_json", gr.Textbox("[]", visible="hidden", elem_id="pins-json"))
    page.add("pins_store", gr.BrowserState([], storage_key="resnext-builder-pins",
                                           secret=browser_secret()))


def compare_view(action, spec_json, pins_json, last_times) -> dict:
    """Pins: action "pin" (the spec), "sweep" (Table 2 on the spec's template), "clear",
    or "show". Returns the pins (JSON), the table and the charts."""
    try:  # pins from the browser or the API: a wrong type, too many, nested too deep
        pins = compare.load_pins(pins_json)
    except SpecError as exc:
        raise user_error(exc, "Pins not read") from None
    times = compare.load_times(last_times)
    if action in ("pin", "sweep"):
        spec = parse_spec_json(spec_json)
        specs = [spec] if action == "pin" else compare.sweep(spec)
        pins = compare.add_pins(pins, specs, times)
    elif action == "clear":
        pins = []
    elif action != "show":
        raise gr.Error(error_text(f"action: {str(action)[:80]!r} is not allowed; expected pin, "
                                  "sweep, clear or show"))
    return {"pins_json": json.dumps(pins), "pins_store": pins,
            "compare_table": compare.table(pins), "compare_chart": compare.charts_svg(pins)}


def pin(spec_json, pins_json, last_times) -> dict:
    """Pin the current configuration."""
    return compare_view("pin", spec_json, pins_json, last_times)


def sweep(spec_json, pins_json, last_times) -> dict:
    """Pin C in {1, 2, 4, 8, 32} at matched complexity."""
    return compare_view("sweep", spec_json, pins_json, last_times)


def clear_pins(spec_json, pins_json, last_times) -> dict:
    """Remove every pin."""
    return compare_view("clear", spec_json, pins_json, last_times)


def restore_pins(stored) -> dict:
    """Pins kept in the browser (untrusted: validated again) -> the Compare view."""
    return compare_view("show", "", json.dumps(stored if isinstance(stored, list) else []),
                        "{}")


def compare_api(action: str, spec_json: str, pins_json: str = "[]",
                last_times: str = "{}") -> dict:
    """Pins without a page: action "pin", "sweep", "clear" or "show" on the pins given
    as JSON; returns {"pins", "table", "chart_svg"}."""
    out = compare_view(action, spec_json, pins_json, last_times)
    return {"pins": json.loads(out["pins_json"]), "table": out["compare_table"],
            "chart_svg": out["compare_chart"]}


def wire(page: Page) -> None:
    for handler in (pin, sweep, clear_pins):
        page.on(f"{handler.__name__}.click", handler, INPUTS, OUTPUTS,
                api_name=handler.__name__, **FAST)
    page.on("demo.load", restore_pins, "pins_store", OUTPUTS, api_name="restore_pins", **FAST)
    page.api(compare_api, "compare", concurrency_limit=4)
