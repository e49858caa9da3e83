"""The page: the header, the controls on the left, the headline and one tab per module on the
right. A new tab is one module (TITLE, ID, API_NAMES, layout, wire; `hidden` optional) and one
entry in TABS."""

from __future__ import annotations

import gradio as gr

from builder import views
from builder.spec import PRESETS, SpecError, spec_fields

from . import (
    block,
    code,
    compare,
    controls,
    equivalence,
    learn,
    network,
    overview,
    profile,
    summary,
    timing,
    weights,
)
from .common import DEFAULT_PRESET, OUTPUT_MAX_AGE_S, Page, parse_spec_json, user_error

TABS = (overview, block, network, summary, code, weights, timing, profile, equivalence, compare,
        learn)
API_NAMES = ("build",)  # this module's own: everything about one spec at once

CSS = """
#header h1 { margin-bottom: 0; }
/* "clip", not Gradio's "hidden": it clips the same but makes no scroll container, so the
   sticky message below stays in view while the page scrolls */
.gradio-container { overflow: clip !important; }
/* solid and above the controls it scrolls over (their labels stack above z-index 20) */
#spec-error { position: sticky; top: 8px; z-index: 1000; border-radius: 8px;
  border: 1px solid #ef4444; padding: 6px 10px; color: #991b1b; background: #fef2f2;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25); }
.dark #spec-error { color: #fecaca; background: #450a0a; }
#spec-error * { color: inherit; }
.graph-view > svg { border-radius: 8px; }  /* the drawing is a white card on a dark page */
.graph-view { margin: 0; overflow: auto; }
.graph-view svg { display: block; margin: 0 auto; max-width: 100%; height: auto; }
#block-svg .graph-view svg { width: 100%; max-height: 85vh; }  /* the whole block in view */
#network-svg .graph-view { max-height: 85vh; }  /* a deep network scrolls */
.graph-view .highlight > polygon, .graph-view .highlight > ellipse,
.graph-view .highlight > path { stroke: #dc2626; stroke-width: 3px; }
.summary-table { font-size: 12px; line-height: 1.35; overflow: auto; max-height: 70vh;
  padding: 8px; border-radius: 8px; background: var(--block-background-fill); }
.downloads { align-items: center; }
#start-here { max-width: 360px; }
/* numbers never break across lines: words break only between words, numeric tables never */
.gradio-container td, .gradio-container th { word-break: normal; overflow-wrap: normal;
  font-variant-numeric: tabular-nums; }
#overview td, #stages td, #formula td, #summary-totals td, #compare-table td, #table1 td,
#time-table td { white-space: nowrap; }
#overview, #formula, #summary-totals { overflow-x: auto; }
/* a phone: the results first, the controls after them */
@media (max-width: 700px) { #controls { order: 2; } #results { order: 1; } }
/* the drawings' tools (builder.views.svg_html, GRAPH_JS): full screen, zoom, pan, fit */
.graph-tools { display: flex; gap: 4px; justify-content: flex-end; margin: 0 0 4px; }
.graph-tools button { font-size: 13px; line-height: 1.3; padding: 2px 10px; cursor: pointer;
  border-radius: 6px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); }
.graph-row { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr));
  gap: 8px; align-items: start; }
.graph-row figcaption { font-weight: 600; text-align: center; margin: 2px 0 4px; }
.graph-zoomable svg.zoomed { cursor: grab; }
.graph-zoomable:fullscreen { background: #fff; color: #111; padding: 8px; overflow: hidden;
  display: flex; flex-direction: column; }
.graph-zoomable:fullscreen svg { width: 100% !important; height: auto !important;
  max-width: none !important; max-height: none !important; flex: 1 1 0; min-height: 0;
  touch-action: none; }
.graph-set:fullscreen .graph-row { flex: 1 1 0; min-height: 0; align-items: stretch;
  grid-template-columns: repeat(3, 1fr); grid-template-rows: 100%; }
.graph-set:fullscreen .graph-view { display: flex; flex-direction: column; min-height: 0;
  overflow: hidden; }
@media (max-width: 700px) { .graph-set:fullscreen .graph-row { grid-template-columns: 1fr;
  grid-template-rows: repeat(3, minmax(0, 1fr)); } }
/* display math fits its column: KaTeX's own overflow would clip it */
#learn-text .katex-display { font-size: 0.95em; max-width: 100%; }
"""


def field_error_css() -> str:
    """The bad field's control outlined while the pinned message names it (the message holds
    an empty span.bad-{control}; see controls.invalid): one rule per spec field."""
    rules = [f"body:has(#spec-error .bad-{info.control}) #{info.control}"
             for info in spec_fields()]
    return (",\n".join(rules) + " { outline: 2px solid #ef4444; outline-offset: 2px; "
            "border-radius: 8px; }\n")


CSS += field_error_css()


def endpoints() -> set[str]:
    """Every api_name the page registers, as the modules declare them."""
    names = {*API_NAMES, *controls.API_NAMES}
    for tab in TABS:
        names.update(tab.API_NAMES)
    return {f"/{name}" for name in names}


def layout(page: Page) -> None:
    """The components, in page order; each one is stored on `page` under its name."""
    gr.Markdown(
        "# ResNeXt Block Builder\n"
        "Aggregated residual transformations (Xie et al., CVPR 2017): set the cardinality C, "
        "the width per group d and the stages, and see the numbers, the block in forms (a), "
        "(b), (c), the network, its summary and its code.", elem_id="header")
    page.add("start_here", gr.Button("▶ Start here: the block in 8 steps (Learn)",
                                     variant="primary", size="sm", elem_id="start-here"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320, elem_id="controls"):
            controls.layout(page)
        with gr.Column(scale=3, min_width=340, elem_id="results"):
            page.add("headline", gr.Markdown(views.headline(PRESETS[DEFAULT_PRESET]),
                                             elem_id="headline"))
            with gr.Tabs(elem_id="views", overflow_behavior="wrap"):  # every tab in view
                for tab in TABS:
                    with gr.Tab(tab.TITLE, id=tab.ID) as item:
                        tab.layout(page)
                    page.add(f"{tab.ID}_tab", item)
            for tab in TABS:
                if hasattr(tab, "hidden"):
                    tab.hidden(page)


def build(spec_json: str) -> dict:
    """Everything about one spec, given as JSON text (ResNeXtSpec's keys, or
    {"preset": name} plus overrides): name, spec, params, multiply-adds, FLOPs, the block
    SVG of stage 1 (its later block, as the page first shows it), the summary rows (depth 3)
    and the standalone source. Without Graphviz, block_svg is null and `note` says why
    (everything else is there)."""
    from builder.memory import release
    from builder.network import figure_block

    spec = parse_spec_json(spec_json)
    total = views.counts(spec).total
    try:
        rows = views.summary(spec, 3).to_dict()["rows"]
    except SpecError as exc:
        raise user_error(exc, "Too big to build") from None
    finally:
        release()  # the summary built the model: give its memory back
    try:
        svg, note = views.block_svg(spec, 0, figure_block(spec, 0)), None
    except RuntimeError as exc:  # GraphvizError: `dot` missing, failed or timed out
        svg, note = None, f"The drawing needs Graphviz: {exc}"
    return {"name": spec.name, "spec": spec.to_dict(), "params": total.params,
            "macs": total.macs, "flops": total.flops, "block_svg": svg, "note": note,
            "summary_rows": rows, "source": views.source(spec)}


# "Start here" opens the Learn tab as a click on its tab would (so its select event fires)
START_JS = """() => {
  const tab = [...document.querySelectorAll('#views [role="tab"]')]
    .find((b) => b.textContent.trim() === 'Learn');
  if (tab) { tab.click(); tab.scrollIntoView({block: 'start'}); }
}"""


# The drawings' tools, installed once on the document (the drawings come and go with each
# update): the buttons of builder.views.GRAPH_TOOLS, the wheel in full screen or with Ctrl
# (a plain wheel scrolls the page), a drag to pan a zoomed drawing, two fingers to pinch,
# and + - 0 in full screen. Zoom is the SVG's viewBox: the drawing is redrawn, never scaled
# as pixels, so it stays sharp at any zoom.
GRAPH_JS = """() => {
  if (window.graphTools) return;
  window.graphTools = true;
  const home = (svg) => {
    if (!svg.dataset.home) {
      const v = svg.viewBox.baseVal;
      svg.dataset.home = [v.x, v.y, v.width, v.height].join(' ');
    }
    return svg.dataset.home.split(' ').map(Number);
  };
  const view = (svg) => { const v = svg.viewBox.baseVal; return [v.x, v.y, v.width, v.height]; };
  const show = (svg, x, y, w, h) => {
    svg.setAttribute('viewBox', `${x} ${y} ${w} ${h}`);
    svg.classList.toggle('zoomed', w < home(svg)[2] - 1e-6);
  };
  const zoom = (svg, factor, fx = 0.5, fy = 0.5) => {
    const W = home(svg)[2], [x, y, w, h] = view(svg);
    const nw = Math.min(W, Math.max(W / 40, w / factor)), nh = h * nw / w;
    show(svg, x + (w - nw) * fx, y + (h - nh) * fy, nw, nh);
  };
  const fit = (svg) => show(svg, ...home(svg));
  const full = (svg) => document.fullscreenElement && document.fullscreenElement.contains(svg);
  const at = (svg, e) => {
    const r = svg.getBoundingClientRect();
    return [(e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height];
  };
  document.addEventListener('click', (e) => {
    const button = e.target.closest && e.target.closest('[data-graph]');
    const holder = button && button.closest('.graph-zoomable');
    if (!holder) return;
    const act = button.dataset.graph;
    if (act === 'fullscreen') {
      if (document.fullscreenElement === holder) document.exitFullscreen();
      else if (holder.requestFullscreen) holder.requestFullscreen();
      return;
    }
    holder.querySelectorAll('svg').forEach((svg) =>
      act === 'fit' ? fit(svg) : zoom(svg, act === 'in' ? 1.5 : 1 / 1.5));
  });
  document.addEventListener('fullscreenchange', () => {
    document.querySelectorAll('[data-graph="fullscreen"]').forEach((b) => {
      const on = b.closest('.graph-zoomable') === document.fullscreenElement;
      b.textContent = on ? 'Leave full screen' : 'Full screen';
      b.title = on ? 'Leave full screen (or Esc)' : 'Full screen (Esc leaves it)';
      b.setAttribute('aria-label', b.title);
    });
  });
  document.addEventListener('wheel', (e) => {
    const svg = e.target.closest && e.target.closest('.graph-zoomable svg');
    if (!svg || !(full(svg) || e.ctrlKey || e.metaKey)) return;
    e.preventDefault();
    zoom(svg, e.deltaY < 0 ? 1.2 : 1 / 1.2, ...at(svg, e));
  }, {passive: false});
  document.addEventListener('keydown', (e) => {
    const holder = document.fullscreenElement;
    if (!holder || !holder.classList.contains('graph-zoomable')) return;
    const act = {'+': 1.5, '=': 1.5, '-': 1 / 1.5, '0': 0}[e.key];
    if (act === undefined) return;
    holder.querySelectorAll('svg').forEach((svg) => act ? zoom(svg, act) : fit(svg));
  });
  const drags = new Map();
  document.addEventListener('pointerdown', (e) => {
    const svg = e.target.closest && e.target.closest('.graph-zoomable svg');
    if (!svg || !(full(svg) || svg.classList.contains('zoomed'))) return;
    drags.set(e.pointerId, {svg, x: e.clientX, y: e.clientY});
    e.preventDefault();
  });
  document.addEventListener('pointermove', (e) => {
    const d = drags.get(e.pointerId);
    if (!d) return;
    const both = [...drags.values()].filter((o) => o.svg === d.svg);
    if (both.length >= 2) {
      const [a, b] = both, before = Math.hypot(a.x - b.x, a.y - b.y);
      d.x = e.clientX; d.y = e.clientY;
      const after = Math.hypot(a.x - b.x, a.y - b.y);
      if (before > 0) zoom(d.svg, after / before,
                           ...at(d.svg, {clientX: (a.x + b.x) / 2, clientY: (a.y + b.y) / 2}));
      return;
    }
    const r = d.svg.getBoundingClientRect(), [x, y, w, h] = view(d.svg);
    const k = Math.max(w / r.width, h / r.height);
    show(d.svg, x - (e.clientX - d.x) * k, y - (e.clientY - d.y) * k, w, h);
    d.x = e.clientX; d.y = e.clientY;
  });
  for (const name of ['pointerup', 'pointercancel'])
    document.addEventListener(name, (e) => drags.delete(e.pointerId));
}"""


def wire(page: Page) -> None:
    page.api(build, "build", concurrency_limit=2)
    page.on("start_here.click", None, js=START_JS)
    page.on("demo.load", None, js=GRAPH_JS)
    controls.wire(page)
    for tab in TABS:
        tab.wire(page)


def build_demo() -> gr.Blocks:
    page = Page()
    # delete_cache: every hour, Gradio removes the files of its cache older than an hour
    with gr.Blocks(title="ResNeXt Block Builder",
                   delete_cache=(OUTPUT_MAX_AGE_S, OUTPUT_MAX_AGE_S)) as demo:
        page.add("demo", demo)
        layout(page)
        wire(page)
    demo.page = page  # the components by name, for tests
    return demo


def theme() -> gr.themes.Base:
    # Soft's fonts are bundled with Gradio (LocalFont): the page needs no network
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")
