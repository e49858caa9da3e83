"""Learn: a classroom walk-through of the block, step by step, with this network's numbers
and the parts each step is about highlighted in the block graph."""

from __future__ import annotations

import gradio as gr

from builder import learn, views
from builder.spec import SpecError

from .common import FAST, HEAVY, Page, graph_error, md_text, parse_spec_json

TITLE, ID = "Learn", "learn"
API_NAMES = ("learn", "learn_follow", "learn_step")
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "$", "right": "$", "display": False}]
OUTPUTS = ["learn_text", "learn_svg"]


def layout(page: Page) -> None:
    with gr.Row():
        page.add("learn_previous", gr.Button("← previous", elem_id="learn-previous",
                                             min_width=80))
        page.add("learn_next", gr.Button("next →", variant="primary", elem_id="learn-next",
                                         min_width=80))
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=440):
            page.add("learn_text", gr.Markdown(elem_id="learn-text", latex_delimiters=LATEX))
        with gr.Column(scale=2, min_width=320):
            page.add("learn_svg", gr.HTML(elem_id="learn-svg"))


def hidden(page: Page) -> None:
    """After the tabs: the step shown, and whether the walk-through has been opened."""
    page.add("learn_step", gr.Number(0, visible="hidden", elem_id="learn-step"))
    page.add("learn_opened", gr.State(False))  # the walk-through is drawn once it is opened


def learn_step(spec_json, step) -> dict:
    """Step `step` of the walk-through with this network's numbers, and the block graph
    with the parts it is about highlighted (by node id)."""
    spec = parse_spec_json(spec_json)
    try:  # the raw step: lesson refuses anything but a whole number (NaN, "abc")
        item = learn.lesson(spec, 0 if step is None or step == "" else step)
    except SpecError as exc:
        return {"learn_text": f"**Not shown.** {md_text(views.user_message(exc))}",
                "learn_svg": ""}
    note = learn.drawn_note(spec, item["spec"])
    try:
        svg = learn.highlight_svg(views.block_svg(item["spec"], 0, item["block_index"]),
                                  item["highlight"])
        drawing, outlined = views.svg_html(svg, item["title"]), True
    except RuntimeError as exc:  # GraphvizError: the text without its drawing
        drawing, outlined = graph_error(f"The drawing needs Graphviz: {exc}"), False
    text = (f"### {item['index'] + 1}/{item['count']}. {item['title']}\n\n"
            + (f"*{note}*\n\n" if note else "") + item["text"]
            + ("\n\n<small>The parts this step is about are outlined in red.</small>"
               if outlined else "\n\n*The drawing needs Graphviz (`dot`), not installed "
               "here.*"))
    return {"learn_text": text, "learn_svg": drawing}


def learn_open(spec_json, step) -> dict:
    """The walk-through, drawn when its tab is opened (or, opened before the page has
    its spec, as soon as the spec arrives)."""
    if not spec_json:
        return {"learn_opened": True}
    return {**learn_step(spec_json, step), "learn_opened": True}


def learn_follow(spec_json, step, opened) -> dict:
    """A new spec redraws the walk-through with its numbers, once it has been opened."""
    # not opened yet: leave both outputs as they are (an empty dict would be too few values)
    return learn_step(spec_json, step) if opened else {name: gr.skip() for name in OUTPUTS}


def wire(page: Page) -> None:
    page.on("learn_tab.select", learn_open, ["spec_json", "learn_step"],
            OUTPUTS + ["learn_opened"], api_name="learn", **FAST)
    page.on("spec_json.change", learn_follow, ["spec_json", "learn_step", "learn_opened"],
            OUTPUTS, api_name="learn_follow", **HEAVY)
    # "next" and "previous" count in the browser (so quick clicks all count); the step's
    # change draws it
    last = learn.STEP_COUNT - 1
    page.on("learn_next.click", None, "learn_step", "learn_step",
            js=f"(step) => Math.min(Math.round(step || 0) + 1, {last})")
    page.on("learn_previous.click", None, "learn_step", "learn_step",
            js="(step) => Math.max(Math.round(step || 0) - 1, 0)")
    page.on("learn_step.change", learn_step, ["spec_json", "learn_step"], OUTPUTS,
            api_name="learn_step", trigger_mode="always_last", **FAST)
