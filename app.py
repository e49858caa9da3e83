"""ResNeXt Block Builder in the browser: explore, draw, summarize, export and share a ResNeXt.

    bash scripts/run.sh            # http://127.0.0.1:7860 (GRADIO_SERVER_PORT / _NAME respected)
    .venv/bin/python app.py --port 7861 --share

The only module that imports Gradio: page layout and event wiring. Every handler parses the
controls into a ResNeXtSpec, calls `builder`, and formats the result; the numbers come from
`builder.views` (analytic counts, cached per spec), never from a model built for the page.
Changing a control updates the analytics at once; the graphs, the summary and the code follow
as separate events, so the controls never wait for them. Every event has an `api_name`, and
`/build` takes a spec as JSON text and returns everything at once.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Downloads are written here and nowhere else; Gradio may serve only this folder. Gradio's
# own copies of what it serves (its cache) go inside it too, so that one folder holds every
# file the app makes, and removing it at exit (SIGTERM included) leaves nothing behind.
OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="resnext-builder-"))
atexit.register(shutil.rmtree, OUTPUT_DIR, ignore_errors=True)
os.environ["GRADIO_TEMP_DIR"] = str(OUTPUT_DIR / "gradio")
for _var in ("NO_PROXY", "no_proxy"):  # Gradio checks its own server through any proxy
    if "127.0.0.1" not in os.environ.get(_var, ""):
        os.environ[_var] = ",".join(h for h in ("localhost,127.0.0.1", os.environ.get(_var))
                                    if h)

import gradio as gr  # noqa: E402

from builder import compare, guards, learn, proof, share, timing, views  # noqa: E402
from builder.complexity import matched_width  # noqa: E402
from builder.spec import (  # noqa: E402
    FIELDS,
    MAX_JSON_BYTES,
    PRESETS,
    ResNeXtSpec,
    SpecError,
)
from builder.timing import available_devices  # noqa: E402

DEFAULT_PRESET = "resnext50_32x4d"
ASK_ABOVE_S = 20.0  # a CPU timing estimated to take longer asks first
MAX_RUN_S = 300.0  # a timing run is stopped after this long (timing.time_model's deadline_s)
ESTIMATE_SLACK = 3.0  # ...and one estimated above 3x that is not started at all
MAX_RESULTS = 30  # timing rows kept per session
OUTPUT_MAX_AGE_S = 3600  # downloads older than this are removed (Gradio's cache: delete_cache)
# Timing runs and proofs hold this while they run. Gradio's queue ("device", one at a time)
# orders them and shows each user its place; the lock covers what the queue cannot: a run
# whose client cancelled goes on in its worker thread after Gradio has freed the slot, and
# the next run must not measure beside it.
DEVICE_LOCK = threading.Lock()

BLOCK_CHOICES = [("bottleneck: 1×1, 3×3, 1×1", "bottleneck"),
                 ("basic: 3×3, 3×3 (ResNet-18/34)", "basic")]
STEM_CHOICES = [("ImageNet: 7×7/2 conv + max-pool", "imagenet"),
                ("CIFAR: 3×3/1 conv, no pool", "cifar")]
STRIDE_CHOICES = [("on the 3×3 (paper, v1.5)", "3x3"), ("on the first 1×1 (ResNet v1)", "1x1")]
FORM_CHOICES = [(label, key) for key, label in FIELDS["form"].choices]
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "$", "right": "$", "display": False}]

CSS = """
#header h1 { margin-bottom: 0; }
/* "clip", not Gradio's "hidden": it clips the same but makes no scroll container, so the
   sticky message below stays in view while the page scrolls */
.gradio-container { overflow: clip !important; }
#spec-error { position: sticky; top: 8px; z-index: 20; border-radius: 8px;
  border: 1px solid var(--error-border-color, #ef4444); padding: 6px 10px;
  color: var(--error-text-color, #b91c1c); background: var(--error-background-fill, #fef2f2); }
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
"""

# The PNG is drawn on request (Graphviz takes ~0.2-0.5 s), then downloaded by the browser.
DOWNLOAD_JS = """(file) => {
  if (file && file.url) {
    const a = document.createElement('a');
    a.href = file.url; a.download = file.orig_name || 'graph.png';
    document.body.appendChild(a); a.click(); a.remove();
  }
  return [];
}"""
# The share link: this page's address with the configuration's query string; the address
# bar follows too, so the link can be copied from either place.
SHARE_JS = """(query) => {
  const url = window.location.origin + window.location.pathname + (query || '');
  try { window.history.replaceState(null, '', url); } catch (e) {}
  return url;
}"""


# -- parsing and formatting (thin: the numbers come from builder) --------------------------

def _whole(value):
    """A Number control's value as an int where it is one (the spec rejects anything else)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def spec_from_controls(cardinality, width_per_group, depths, form, block, stem, stride_on,
                       image_size, num_classes, in_channels, stem_width,
                       zero_init_residual) -> ResNeXtSpec:
    """The spec the controls describe; SpecError (naming the field) where one is invalid."""
    return ResNeXtSpec(cardinality=_whole(cardinality), width_per_group=_whole(width_per_group),
                       depths=views.parse_depths(depths), form=form, block=block, stem=stem,
                       stride_on=stride_on, image_size=_whole(image_size),
                       num_classes=_whole(num_classes), in_channels=_whole(in_channels),
                       stem_width=_whole(stem_width),
                       zero_init_residual=bool(zero_init_residual))


def parse_spec_json(spec_json: str) -> ResNeXtSpec:
    try:
        return ResNeXtSpec.from_json(spec_json)
    except SpecError as exc:
        raise gr.Error(str(exc), title="Invalid spec") from None


def _slug(spec: ResNeXtSpec) -> str:
    """A file name stem: the network's name and a short hash of its full spec."""
    name = re.sub(r"[^a-z0-9]+", "-", spec.name.lower()).strip("-")
    digest = hashlib.sha1(spec.to_json(indent=None).encode()).hexdigest()[:8]
    return f"{name}-{spec.form}-{digest}"


def browser_secret() -> str:
    """The key Gradio encrypts the pins kept in the browser with. Gradio draws a new one at
    every launch, which would drop every pin at a restart; this one is kept in the user's
    cache folder (created once, readable by the user only), or taken from
    RESNEXT_BUILDER_SECRET. Where neither can be had, a random one: pins last until restart."""
    if os.environ.get("RESNEXT_BUILDER_SECRET"):
        return os.environ["RESNEXT_BUILDER_SECRET"]
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resnext-builder"
    path = folder / "browser-state-secret"
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(handle, "w") as out:
                out.write(secrets.token_hex(32))
        return path.read_text().strip() or secrets.token_hex(32)
    except OSError:  # a read-only home, or a race lost to another process: read again
        try:
            return path.read_text().strip() or secrets.token_hex(32)
        except OSError:
            return secrets.token_hex(32)


_last_prune = [0.0]


def prune_outputs(now: float) -> int:
    """Remove downloads older than OUTPUT_MAX_AGE_S from OUTPUT_DIR (at most once a minute),
    so that a long-running server does not fill its disk. `now`: the modification time of
    the file just written (no clock is read here). Returns how many were removed."""
    if now - _last_prune[0] < 60:
        return 0
    _last_prune[0] = now
    removed = 0
    for entry in os.scandir(OUTPUT_DIR):
        try:
            if entry.is_file() and now - entry.stat().st_mtime > OUTPUT_MAX_AGE_S:
                os.remove(entry.path)
                removed += 1
        except OSError:  # removed by another thread meanwhile
            pass
    return removed


def write_output(name: str, data: bytes | str) -> str:
    """Write a download into the app's output folder (atomically) and return its path."""
    path = OUTPUT_DIR / name
    if not path.exists():  # two sessions may ask for the same file at once: each its own temp
        handle, tmp = tempfile.mkstemp(dir=OUTPUT_DIR, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
        prune_outputs(path.stat().st_mtime)
    return str(path)


# -- the page -------------------------------------------------------------------------------

def layout(ui: SimpleNamespace) -> None:
    """The components, in page order; each one is stored on `ui` under its name."""
    spec0 = PRESETS[DEFAULT_PRESET]
    gr.Markdown(
        "# ResNeXt Block Builder\n"
        "Aggregated residual transformations (Xie et al., CVPR 2017): set the cardinality C, "
        "the width per group d and the stages, and see the numbers, the block in forms (a), "
        "(b), (c), the network, its summary and its code.", elem_id="header")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320, elem_id="controls"):
            # first in the column and sticky: a message stays in view next to whichever
            # control the user is editing
            ui.error = gr.Markdown(visible=False, elem_id="spec-error")
            ui.preset = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Preset",
                                    info="start from a named network", elem_id="preset")
            with gr.Row():
                ui.cardinality = gr.Number(spec0.cardinality, label="Cardinality C",
                                           info="paths per block", elem_id="cardinality",
                                           min_width=120)
                ui.width = gr.Number(spec0.width_per_group, label="Width per group d",
                                     info="path width, stage 1", elem_id="width",
                                     min_width=120)
            with gr.Row(equal_height=True):
                ui.keep = gr.Checkbox(False, label="Keep the baseline's complexity",
                                      info="solve d for this C", elem_id="keep",
                                      min_width=140)
                ui.baseline = gr.Dropdown(list(PRESETS), value=views.DEFAULT_BASELINE,
                                          label="Baseline", info="kept, and compared against",
                                          elem_id="baseline", min_width=140)
            ui.depths = gr.Textbox(views.format_depths(spec0.depths), label="Blocks per stage",
                                   info="one number per stage, e.g. 3, 4, 6, 3",
                                   elem_id="depths")
            with gr.Row():
                ui.add_stage = gr.Button("+ stage", size="sm", elem_id="add-stage",
                                         min_width=80)
                ui.remove_stage = gr.Button("− stage", size="sm", elem_id="remove-stage",
                                            min_width=80)
            ui.form = gr.Radio(FORM_CHOICES, value=spec0.form, label="Block form",
                               elem_id="form")
            ui.block = gr.Radio(BLOCK_CHOICES, value=spec0.block, label="Block type",
                                elem_id="block")
            ui.stem = gr.Radio(STEM_CHOICES, value=spec0.stem, label="Stem", elem_id="stem")
            ui.stride_on = gr.Radio(STRIDE_CHOICES, value=spec0.stride_on,
                                    label="Stride of a downsampling bottleneck",
                                    elem_id="stride-on")
            with gr.Row():
                ui.image_size = gr.Number(spec0.image_size, label="Image size",
                                          elem_id="image-size", min_width=100)
                ui.num_classes = gr.Number(spec0.num_classes, label="Classes",
                                           elem_id="num-classes", min_width=100)
            with gr.Accordion("More", open=False):
                ui.in_channels = gr.Number(spec0.in_channels, label="Input channels",
                                           elem_id="in-channels")
                ui.stem_width = gr.Number(spec0.stem_width, label="Stem width",
                                          elem_id="stem-width")
                ui.zero_init = gr.Checkbox(spec0.zero_init_residual,
                                           label="Zero-init the last BN of each block",
                                           elem_id="zero-init")
            with gr.Accordion("Share", open=True):
                ui.share_link = gr.Textbox(label="Link to this configuration",
                                           buttons=["copy"], elem_id="share-link",
                                           interactive=False)
                with gr.Row():
                    ui.upload = gr.UploadButton("Upload JSON config", file_types=[".json"],
                                                size="sm", elem_id="upload-config")
                    ui.config_file = gr.DownloadButton("Download JSON config", size="sm",
                                                       elem_id="config-download")
            ui.share_query = gr.Textbox(visible="hidden", elem_id="share-query")
            ui.spec_json = gr.Textbox(visible="hidden", elem_id="spec-json")

        with gr.Column(scale=3, min_width=480):
            ui.headline = gr.Markdown(views.headline(spec0), elem_id="headline")
            with gr.Tabs(elem_id="views"):
                with gr.Tab("Overview", id="overview"):
                    ui.overview = gr.Markdown(views.overview_markdown(spec0),
                                              elem_id="overview")
                    ui.stages = gr.Dataframe(views.stage_table(spec0), interactive=False,
                                             label="Per stage", elem_id="stages",
                                             max_height=420)
                    ui.formula = gr.Markdown(views.formula_markdown(spec0), elem_id="formula")
                with gr.Tab("Block", id="block"):
                    ui.stage = gr.Radio(views.stage_choices(spec0), value=0,
                                        label="Stage shown", elem_id="stage")
                    graph_view(ui, "block")
                with gr.Tab("Network", id="network"):
                    graph_view(ui, "network")
                with gr.Tab("Summary", id="summary"):
                    ui.summary_depth = gr.Radio([1, 2, 3, 4], value=3, label="Depth",
                                                info="how deep torchinfo lists modules",
                                                elem_id="summary-depth")
                    ui.summary_totals = gr.Markdown(elem_id="summary-totals")
                    ui.summary_table = gr.HTML(elem_id="summary-table")
                with gr.Tab("Code", id="code"):
                    with gr.Row(elem_classes="downloads"):
                        ui.py_file = gr.DownloadButton("model.py", size="sm",
                                                       elem_id="py-download")
                        ui.json_file = gr.DownloadButton("spec.json", size="sm",
                                                         elem_id="json-download")
                        ui.onnx_button = gr.Button("Export ONNX", size="sm",
                                                   elem_id="onnx-export")
                        ui.onnx_file = gr.DownloadButton("model.onnx", size="sm",
                                                         visible=False, elem_id="onnx-download")
                    ui.onnx_message = gr.Markdown(elem_id="onnx-message")
                    ui.code = gr.Code(language="python", interactive=False, lines=24,
                                      max_lines=40, label="Standalone PyTorch source",
                                      elem_id="code")
                with gr.Tab("Timing", id="timing"):
                    layout_timing(ui)
                with gr.Tab("Equivalence", id="equivalence"):
                    layout_equivalence(ui)
                with gr.Tab("Compare", id="compare"):
                    layout_compare(ui)
                with gr.Tab("Learn", id="learn") as ui.learn_tab:
                    layout_learn(ui)
            ui.png_file = gr.File(visible="hidden", elem_id="png-file")
            ui.last_times = gr.Textbox("{}", visible="hidden", elem_id="last-times")
            ui.timing_results = gr.State([])
            ui.pins_json = gr.Textbox("[]", visible="hidden", elem_id="pins-json")
            ui.pins_store = gr.BrowserState([], storage_key="resnext-builder-pins",
                                            secret=browser_secret())
            ui.learn_step = gr.Number(0, visible="hidden", elem_id="learn-step")
            ui.learn_opened = gr.State(False)  # the walk-through is drawn once it is opened


def graph_view(ui: SimpleNamespace, name: str) -> None:
    """A drawing (`ui.{name}_html`, elem_id "{name}-svg") and its SVG, PNG and DOT buttons."""
    setattr(ui, f"{name}_html", gr.HTML(elem_id=f"{name}-svg"))
    with gr.Row(elem_classes="downloads"):
        setattr(ui, f"{name}_svg", gr.DownloadButton("SVG", size="sm",
                                                     elem_id=f"{name}-svg-download"))
        setattr(ui, f"{name}_png", gr.Button("PNG", size="sm", elem_id=f"{name}-png"))
        setattr(ui, f"{name}_dot", gr.DownloadButton("DOT", size="sm",
                                                     elem_id=f"{name}-dot-download"))


def layout_timing(ui: SimpleNamespace) -> None:
    devices = available_devices()
    gpu = [d for d in devices if d.startswith("cuda")]
    gr.Markdown(
        "Time the network on one random batch: warm-up, then timed iterations; the median "
        "with its spread. " + (f"This server has a GPU ({', '.join(gpu)}) and the CPU."
                               if gpu else "**This server has no GPU: timings run on the "
                               "CPU.**"), elem_id="timing-intro")
    with gr.Row():
        ui.time_device = gr.Dropdown(devices, value=devices[-1] if gpu else "cpu",
                                     label="Device", elem_id="time-device", min_width=100)
        ui.time_batch = gr.Number(8, label="Batch", elem_id="time-batch", min_width=80)
        ui.time_size = gr.Number(None, label="Image size", info="empty: the spec's",
                                 elem_id="time-size", min_width=80)
        ui.time_dtype = gr.Dropdown(["fp32", "bf16", "fp16", "tf32"], value="fp32",
                                    label="dtype", elem_id="time-dtype", min_width=80)
        ui.time_mode = gr.Radio(["inference", "train"], value="inference", label="Mode",
                                elem_id="time-mode")
    with gr.Row():
        ui.time_channels_last = gr.Checkbox(False, label="channels_last",
                                            elem_id="time-channels-last")
        ui.time_compile = gr.Checkbox(False, label="torch.compile", elem_id="time-compile")
        ui.time_scope = gr.Radio([("whole network", "network"),
                                  ("one block of the stage shown", "block")],
                                 value="network", label="What", elem_id="time-scope")
        ui.time_forms = gr.Checkbox(False, label="time all three forms side by side",
                                    elem_id="time-forms")
    with gr.Row():
        ui.time_run = gr.Button("Run timing", variant="primary", elem_id="time-run")
        ui.time_confirm = gr.Button("Run anyway", visible=False, variant="stop",
                                    elem_id="time-confirm")
    ui.time_confirmed = gr.Checkbox(False, visible="hidden", elem_id="time-confirmed")
    ui.time_message = gr.Markdown(elem_id="time-message")
    ui.time_table = gr.Dataframe(headers=views.TIMING_HEADERS, interactive=False,
                                 label="Results (newest first)", elem_id="time-table",
                                 wrap=True)
    ui.time_chart = gr.HTML(elem_id="time-chart")


def layout_equivalence(ui: SimpleNamespace) -> None:
    gr.Markdown(
        "Convert this network's weights (random, with random BN statistics) into the other two "
        "forms, run the same random batch through all three in float64 and float32, and "
        "compare: the forms are one function, so every difference is float rounding. Then "
        "the three forms are timed: equal in math, not in speed.", elem_id="proof-intro")
    with gr.Row():
        ui.proof_scope = gr.Radio([("one block of the stage shown", "block"),
                                   ("whole network", "network")], value="block",
                                  label="What", elem_id="proof-scope")
        ui.proof_batch = gr.Number(1, label="Batch", elem_id="proof-batch", min_width=80)
        ui.proof_train = gr.Checkbox(False, label="also in train mode (BN on batch statistics)",
                                     elem_id="proof-train")
    with gr.Row():
        ui.proof_run = gr.Button("Prove forms (a), (b), (c) equal", variant="primary",
                                 elem_id="proof-run")
        ui.proof_confirm = gr.Button("Run anyway", visible=False, variant="stop",
                                     elem_id="proof-confirm")
    ui.proof_confirmed = gr.Checkbox(False, visible="hidden", elem_id="proof-confirmed")
    ui.proof_message = gr.Markdown(elem_id="proof-message")
    ui.proof_table = gr.Dataframe(headers=views.PROOF_HEADERS, interactive=False,
                                  label="max |difference| against the spec's own form",
                                  elem_id="proof-table")
    ui.proof_contrast = gr.Markdown(elem_id="proof-contrast")
    ui.proof_chart = gr.HTML(elem_id="proof-chart")


def layout_compare(ui: SimpleNamespace) -> None:
    gr.Markdown("Pin configurations to compare them; pins stay in this browser across "
                "reloads. The sweep reproduces the paper's Table 2: C in {1, 2, 4, 8, 32} with "
                "d solved so that every block keeps the complexity of the C=1, d=64 one.",
                elem_id="compare-intro")
    with gr.Row():
        ui.pin = gr.Button("Pin this configuration", variant="primary", elem_id="pin")
        ui.sweep = gr.Button("Sweep C ∈ {1, 2, 4, 8, 32} at matched complexity",
                             elem_id="sweep")
        ui.clear_pins = gr.Button("Clear pins", variant="stop", elem_id="clear-pins")
    ui.compare_table = gr.Dataframe(headers=compare.HEADERS, interactive=False,
                                    label="Pinned", elem_id="compare-table", wrap=True)
    ui.compare_chart = gr.HTML(elem_id="compare-chart")


def layout_learn(ui: SimpleNamespace) -> None:
    with gr.Row():
        ui.learn_previous = gr.Button("← previous", elem_id="learn-previous", min_width=80)
        ui.learn_next = gr.Button("next →", variant="primary", elem_id="learn-next",
                                  min_width=80)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            ui.learn_text = gr.Markdown(elem_id="learn-text", latex_delimiters=LATEX)
        with gr.Column(scale=3, min_width=320):
            ui.learn_svg = gr.HTML(elem_id="learn-svg")


def wire(ui: SimpleNamespace) -> None:
    """The handlers and their events. Each handler: inputs -> spec -> builder -> outputs."""
    spec_inputs = [ui.cardinality, ui.width, ui.depths, ui.form, ui.block, ui.stem,
                   ui.stride_on, ui.image_size, ui.num_classes, ui.in_channels, ui.stem_width,
                   ui.zero_init]
    view_inputs = [ui.keep, ui.baseline, ui.stage]
    analytics = [ui.error, ui.headline, ui.stage,
                 ui.spec_json, ui.share_query, ui.width]
    everything = analytics + [ui.preset, ui.keep] + [c for c in spec_inputs if c is not ui.width]

    def refresh(spec: ResNeXtSpec, preset, baseline, stage, keep_complexity) -> dict:
        """Every fast output for a valid spec."""
        stage = min(max(int(stage or 0), 0), len(spec.depths) - 1)
        return {
            ui.error: gr.update(value="", visible=False),
            ui.headline: views.headline(spec),
            ui.stage: gr.update(choices=views.stage_choices(spec), value=stage),
            ui.spec_json: spec.to_json(indent=None),
            ui.share_query: "?" + share.to_query(
                spec, preset, stage,
                baseline=baseline if baseline in PRESETS and baseline != views.DEFAULT_BASELINE
                else None),
            ui.width: gr.update(value=spec.width_per_group, interactive=not keep_complexity),
        }

    def controls(spec: ResNeXtSpec, preset) -> dict:
        return {ui.preset: preset, ui.keep: False, ui.cardinality: spec.cardinality,
                ui.width: spec.width_per_group, ui.depths: views.format_depths(spec.depths),
                ui.form: spec.form, ui.block: spec.block, ui.stem: spec.stem,
                ui.stride_on: spec.stride_on, ui.image_size: spec.image_size,
                ui.num_classes: spec.num_classes, ui.in_channels: spec.in_channels,
                ui.stem_width: spec.stem_width, ui.zero_init: spec.zero_init_residual}

    def invalid(exc: SpecError, what: str = "Not applied.") -> dict:
        """Only the message changes: the last valid results stay on the page."""
        return {ui.error: gr.update(value=f"**{what}** {exc}", visible=True)}

    def solve(values: list, keep_complexity, baseline) -> ResNeXtSpec:
        if keep_complexity:  # d is solved below; any placeholder will do
            values = [values[0], 1, *values[2:]]
        spec = spec_from_controls(*values)
        if keep_complexity:
            reference = views.baseline_spec(baseline, spec)
            spec = spec.replace(width_per_group=matched_width(spec, reference))
        return spec

    def analyze(preset, cardinality, width_per_group, depths, form, block, stem, stride_on,
                image_size, num_classes, in_channels, stem_width, zero_init_residual,
                keep_complexity, baseline, stage):
        """Controls -> the analytics: params, multiply-adds, FLOPs, per-stage table, formula,
        change against the baseline, the spec as JSON and the share link's query string."""
        values = [cardinality, width_per_group, depths, form, block, stem, stride_on,
                  image_size, num_classes, in_channels, stem_width, zero_init_residual]
        try:
            spec = solve(values, keep_complexity, baseline)
        except SpecError as exc:
            return invalid(exc)
        return refresh(spec, preset, baseline, stage, keep_complexity)

    def stages_editor(change, description):
        def edit(preset, cardinality, width_per_group, depths, form, block, stem, stride_on,
                 image_size, num_classes, in_channels, stem_width, zero_init_residual,
                 keep_complexity, baseline, stage):
            try:
                depths = views.format_depths(change(views.parse_depths(depths)))
            except SpecError as exc:
                return invalid(exc)
            out = analyze(preset, cardinality, width_per_group, depths, form, block, stem,
                          stride_on, image_size, num_classes, in_channels, stem_width,
                          zero_init_residual, keep_complexity, baseline, stage)
            return out if ui.spec_json not in out else {**out, ui.depths: depths}
        edit.__doc__ = description
        return edit

    def apply_preset(preset, baseline, stage):
        """A preset fills every control."""
        if preset not in PRESETS:
            return invalid(SpecError("preset", preset, f"expected one of {', '.join(PRESETS)}"))
        spec = PRESETS[preset]
        return {**refresh(spec, preset, baseline, stage, False), **controls(spec, preset)}

    def restore(query, baseline):
        """A link's query string (`?preset=resnext50_32x4d&C=64&form=a`) -> every control.
        On page load the browser passes its own address's query string."""
        error = None
        try:
            shared = share.from_query(query or "")
        except SpecError as exc:
            shared, error = share.SharedView(PRESETS[DEFAULT_PRESET], DEFAULT_PRESET), exc
        preset = shared.preset or share.preset_of(shared.spec) or DEFAULT_PRESET
        baseline = shared.baseline or views.DEFAULT_BASELINE
        out = {**refresh(shared.spec, preset, baseline, shared.stage, False),
               **controls(shared.spec, preset), ui.baseline: baseline}
        if error is not None:
            out.update(invalid(error, "The link was not applied."))
        return out

    def upload_config(path, preset, baseline, stage):
        """A JSON config file (at most 64 KiB, parsed by ResNeXtSpec.from_json alone)."""
        try:
            with open(path, "rb") as handle:
                spec = ResNeXtSpec.from_json(handle.read(MAX_JSON_BYTES + 1))
        except SpecError as exc:
            return invalid(exc, "Config not applied.")
        except (OSError, TypeError):
            return invalid(SpecError("config", "<upload>", "expected a readable JSON file"),
                           "Config not applied.")
        preset = share.preset_of(spec) or preset
        return {**refresh(spec, preset, baseline, stage, False), **controls(spec, preset)}

    def overview(spec_json, baseline):
        """The Overview tab: totals against the baseline, per-stage table, the per-block
        formula with the numbers filled in. (Apart from the headline, so that the headline
        is drawn first: the table takes the page longer to draw than the server to compute.)"""
        spec = parse_spec_json(spec_json)
        if baseline not in PRESETS:
            raise gr.Error(f"baseline: {baseline!r} is not allowed; expected one of "
                           f"{', '.join(PRESETS)}")
        return {ui.overview: views.overview_markdown(spec, baseline),
                ui.stages: views.stage_table(spec),
                ui.formula: views.formula_markdown(spec, baseline)}

    def block_graph(spec_json, stage):
        """The block of one stage in the spec's form: inline SVG, and SVG and DOT files."""
        spec = parse_spec_json(spec_json)
        stage = min(max(int(stage or 0), 0), len(spec.depths) - 1)
        name = f"{_slug(spec)}-conv{stage + 2}-block"
        dot = write_output(f"{name}.dot", views.block_dot(spec, stage))
        try:
            svg = views.block_svg(spec, stage)
        except RuntimeError as exc:  # GraphvizError: the DOT is still offered
            return {ui.block_html: graph_error(exc), ui.block_svg: None, ui.block_dot: dot}
        title = f"{spec.name}, conv{stage + 2} block, form ({spec.form})"
        return {ui.block_html: views.svg_html(svg, title),
                ui.block_svg: write_output(f"{name}.svg", svg), ui.block_dot: dot}

    def network_graph(spec_json):
        """The whole network, one cluster per stage: inline SVG, and SVG and DOT files."""
        spec = parse_spec_json(spec_json)
        name = f"{_slug(spec)}-network"
        dot = write_output(f"{name}.dot", views.network_dot(spec))
        try:
            svg = views.network_svg(spec)
        except RuntimeError as exc:
            return {ui.network_html: graph_error(exc), ui.network_svg: None,
                    ui.network_dot: dot}
        return {ui.network_html: views.svg_html(svg, f"{spec.name}, network"),
                ui.network_svg: write_output(f"{name}.svg", svg), ui.network_dot: dot}

    def block_png(spec_json, stage):
        """The block graph as PNG (drawn on request)."""
        spec = parse_spec_json(spec_json)
        stage = min(max(int(stage or 0), 0), len(spec.depths) - 1)
        return png_file(spec, views.block_dot(spec, stage), f"conv{stage + 2}-block")

    def network_png(spec_json):
        """The network graph as PNG (drawn on request)."""
        spec = parse_spec_json(spec_json)
        return png_file(spec, views.network_dot(spec), "network")

    def summary(spec_json, depth):
        """torchinfo's table (with the groups column) and its totals."""
        spec = parse_spec_json(spec_json)
        try:
            result = views.summary(spec, int(depth or 3))
        except SpecError as exc:  # too big to build (builder.guards)
            return {ui.summary_totals: f"**No summary.** {exc}", ui.summary_table: ""}
        table = html.escape(views.summary_text(result), quote=False)
        return {ui.summary_totals: views.summary_totals(result),
                ui.summary_table: f'<pre class="summary-table">{table}</pre>'}

    def code(spec_json):
        """The standalone model source, and the .py and .json files."""
        from builder.export import export_json

        spec = parse_spec_json(spec_json)
        source = views.source(spec)
        return {ui.code: source, ui.py_file: write_output(f"{_slug(spec)}.py", source),
                ui.json_file: write_output(f"{_slug(spec)}.json", export_json(spec)),
                ui.config_file: write_output(f"{_slug(spec)}-config.json", spec.to_json())}

    def onnx(spec_json):
        """The model as ONNX, on request (the exporter traces it: seconds for a big one)."""
        from builder.export import ExportUnavailable, export_onnx

        spec = parse_spec_json(spec_json)
        path = OUTPUT_DIR / f"{_slug(spec)}.onnx"
        try:
            if not path.exists():
                export_onnx(spec, str(path))
        except (ExportUnavailable, SpecError) as exc:
            return {ui.onnx_file: gr.update(visible=False),
                    ui.onnx_message: f"**No ONNX.** {exc}"}
        return {ui.onnx_file: gr.update(value=str(path), visible=True),
                ui.onnx_message: f"ONNX ready: {views.fmt_bytes(path.stat().st_size)}."}

    def build(spec_json: str) -> dict:
        """Everything about one spec, given as JSON text (ResNeXtSpec's keys, or
        {"preset": name} plus overrides): name, spec, params, multiply-adds, FLOPs, the block
        SVG of stage 1, the summary rows (depth 3) and the standalone source."""
        spec = parse_spec_json(spec_json)
        total = views.counts(spec).total
        try:
            rows = views.summary(spec, 3).to_dict()["rows"]
        except SpecError as exc:
            raise gr.Error(str(exc), title="Too big to build") from None
        return {"name": spec.name, "spec": spec.to_dict(), "params": total.params,
                "macs": total.macs, "flops": total.flops,
                "block_svg": views.block_svg(spec, 0), "summary_rows": rows,
                "source": views.source(spec)}

    # -- phase 2: timing, the proof, comparisons, the classroom walk-through ----------------
    def time(spec_json, device, batch_size, image_size, dtype, mode, channels_last, compile,
             scope, forms, stage, confirmed, results, last_times,
             progress=gr.Progress()):  # noqa: B008 (Gradio's way to ask for a progress bar)
        """Time the network (or one block of the stage shown), in its form or all three
        side by side. A CPU run estimated to take long is not started until confirmed."""
        spec = parse_spec_json(spec_json)
        results = list(results or [])
        stage = min(max(int(stage or 0), 0), len(spec.depths) - 1)
        if scope == "block":
            forms = True  # one block is timed in the three forms (builder.timing.time_forms)
        try:
            settings = timing_settings(spec, device, batch_size, image_size, dtype, mode,
                                       channels_last, compile, bool(forms))
            target = settings.pop("spec")
            block = stage if scope == "block" else None
            estimate = timing.estimate_seconds(
                target, settings["batch_size"], settings["device"], settings["mode"],
                dtype=settings["dtype"], compile=settings["compile"], forms=bool(forms),
                block=block)
            on_cpu = timing.resolve_device(settings["device"]).type == "cpu"
            too_long(estimate, "timing")
        except (SpecError, ValueError) as exc:  # TimingSettingError is a ValueError
            return {ui.time_message: f"**Not run.** {exc}",
                    ui.time_confirm: gr.update(visible=False)}
        if on_cpu and estimate > ASK_ABOVE_S and not confirmed:
            return {ui.time_message: (
                        f"**This run would take about {estimate:,.0f} s on the CPU** "
                        "(estimated from its multiply-adds). Press *Run anyway* to start it, "
                        "or make it smaller: batch, image size, one block."),
                    ui.time_confirm: gr.update(visible=True,
                                               value=f"Run anyway (about {estimate:,.0f} s)")}
        progress(0.0, desc=f"timing on {settings['device']} (about {estimate:,.0f} s)")
        report = {"progress": lambda fraction, text: progress(fraction, desc=text),
                  "deadline_s": MAX_RUN_S}
        try:
            with DEVICE_LOCK:
                if forms:
                    run = timing.time_forms(target, block=block, **settings, **report)
                else:
                    run = [timing.time_model(target, **settings, **report)]
        except (timing.TimingError, ValueError) as exc:
            return {ui.time_message: f"**Not run.** {exc}",
                    ui.time_confirm: gr.update(visible=False)}
        times = compare.load_times(last_times)
        for result in run:
            if scope == "network":
                key = target.replace(form=result.settings["spec"]["form"]).to_json(indent=None)
                times[key] = {"median_ms": result.median_ms, "batch_size": result.batch_size,
                              "device": result.device_label.split(",")[0]}
        start = len(results)
        results = [views.timing_row(start + i + 1, r) for i, r in enumerate(run)][::-1] \
            + results
        where = run[0].device_label
        message = f"Ran on **{where}**; torch {run[0].torch_version}."
        if forms:
            message += "\n\n" + views.forms_lesson(run)
        return {ui.time_message: message, ui.time_table: {"headers": views.TIMING_HEADERS,
                                                          "data": results[:MAX_RESULTS]},
                ui.time_chart: views.timing_chart(run), ui.timing_results: results[:MAX_RESULTS],
                ui.last_times: json.dumps(times), ui.time_confirm: gr.update(visible=False)}

    def time_confirmed(spec_json, device, batch_size, image_size, dtype, mode, channels_last,
                       compile, scope, forms, stage, confirmed, results, last_times,
                       progress=gr.Progress()):  # noqa: B008
        """The same run, after its estimate was shown and accepted."""
        return time(spec_json, device, batch_size, image_size, dtype, mode, channels_last,
                    compile, scope, forms, stage, True, results, last_times, progress)

    def equivalence(spec_json, scope, stage, batch_size, train_too, confirmed,
                    progress=gr.Progress()):  # noqa: B008
        """Prove forms (a), (b), (c) equal: max |difference| per form, dtype and BN mode next
        to the bound, then time the three forms (the contrast)."""
        spec = parse_spec_json(spec_json)
        stage = min(max(int(stage or 0), 0), len(spec.depths) - 1)
        modes = ("eval", "train") if train_too else ("eval",)
        try:
            batch = views.whole(batch_size, "batch_size")
            # the proof holds the model and one converted copy, in float64
            guards.check(spec, batch, mode="training" if train_too else "inference",
                         dtype_bytes=8, models=2)
            estimate = proof.estimate_seconds(spec, scope, stage, batch, modes)
            too_long(estimate, "proof")
        except SpecError as exc:
            return {ui.proof_message: f"**Not run.** {exc}",
                    ui.proof_confirm: gr.update(visible=False)}
        if estimate > proof.ASK_ABOVE_S and not confirmed:
            return {ui.proof_message: (
                        f"**The proof would take about {estimate:,.0f} s on the CPU** for "
                        f"{spec.name}. Press *Run anyway*, or prove one block (seconds)."),
                    ui.proof_confirm: gr.update(visible=True,
                                                value=f"Run anyway (about {estimate:,.0f} s)")}
        with DEVICE_LOCK:
            result = proof.prove(spec, scope, stage, batch, modes=modes,
                                 progress=lambda fraction, text: progress(fraction, desc=text))
        return {ui.proof_message: views.proof_markdown(result),
                ui.proof_table: views.proof_table(result),
                ui.proof_contrast: views.forms_lesson(result.timings),
                ui.proof_chart: views.timing_chart(result.timings),
                ui.proof_confirm: gr.update(visible=False)}

    def equivalence_confirmed(spec_json, scope, stage, batch_size, train_too, confirmed,
                              progress=gr.Progress()):  # noqa: B008
        """The same proof, after its estimate was shown and accepted."""
        return equivalence(spec_json, scope, stage, batch_size, train_too, True, progress)

    def compare_view(action, spec_json, pins_json, last_times):
        """Pins: action "pin" (the spec), "sweep" (Table 2 on the spec's template), "clear",
        or "show". Returns the pins (JSON), the table and the charts."""
        pins = compare.load_pins(pins_json)
        times = compare.load_times(last_times)
        if action in ("pin", "sweep"):
            spec = parse_spec_json(spec_json)
            specs = [spec] if action == "pin" else compare.sweep(spec)
            pins = compare.add_pins(pins, specs, times)
        elif action == "clear":
            pins = []
        elif action != "show":
            raise gr.Error(f"action: {action!r} is not allowed; expected pin, sweep, clear or "
                           "show")
        text = json.dumps(pins)
        return {ui.pins_json: text, ui.pins_store: pins, ui.compare_table: compare.table(pins),
                ui.compare_chart: compare.charts_svg(pins)}

    def compare_action(action, description):
        def handler(spec_json, pins_json, last_times):
            return compare_view(action, spec_json, pins_json, last_times)
        handler.__doc__ = description
        return handler

    def restore_pins(stored):
        """Pins kept in the browser (untrusted: validated again) -> the Compare view."""
        return compare_view("show", "", json.dumps(stored if isinstance(stored, list) else []),
                            "{}")

    def learn_step(spec_json, step):
        """Step `step` of the walk-through with this network's numbers, and the block graph
        with the parts it is about highlighted (by node id)."""
        spec = parse_spec_json(spec_json)
        item = learn.lesson(spec, int(step or 0))
        svg = learn.highlight_svg(views.block_svg(item["spec"], 0, item["block_index"]),
                                  item["highlight"])
        text = (f"### {item['index'] + 1}/{item['count']}. {item['title']}\n\n{item['text']}"
                f"\n\n<small>highlighted: {', '.join(item['highlight'])}</small>")
        return {ui.learn_text: text, ui.learn_svg: views.svg_html(svg, item["title"])}

    def learn_open(spec_json, step):
        """The walk-through, drawn when its tab is opened (or, opened before the page has
        its spec, as soon as the spec arrives)."""
        if not spec_json:
            return {ui.learn_opened: True}
        return {**learn_step(spec_json, step), ui.learn_opened: True}

    def learn_follow(spec_json, step, opened):
        """A new spec redraws the walk-through with its numbers, once it has been opened."""
        return learn_step(spec_json, step) if opened else {}

    # -- events ------------------------------------------------------------------------------
    # Fast events skip the queue (a plain HTTP call): the analytics take a few milliseconds,
    # and the queue's round trips would cost more than that.
    fast = {"show_progress": "hidden", "queue": False}
    heavy = {"show_progress": "minimal", "concurrency_limit": 2, "trigger_mode": "always_last"}
    edit_inputs = [ui.preset] + spec_inputs + view_inputs
    # typing fires `input`; a paste or a script that sets the text fires only `blur`/`submit`
    triggers = [c.input for c in spec_inputs + view_inputs] + [ui.depths.submit, ui.depths.blur]
    gr.on(triggers, analyze, edit_inputs, analytics, api_name="analyze",
          trigger_mode="always_last", **fast)
    ui.preset.input(apply_preset, [ui.preset, ui.baseline, ui.stage], everything,
                    api_name="preset", **fast)
    ui.add_stage.click(stages_editor(views.add_stage, "Append a stage as deep as the last."),
                       edit_inputs, analytics + [ui.depths], api_name="add_stage", **fast)
    ui.remove_stage.click(stages_editor(views.remove_stage, "Remove the last stage."),
                          edit_inputs, analytics + [ui.depths], api_name="remove_stage", **fast)
    ui.upload.upload(upload_config, [ui.upload, ui.preset, ui.baseline, ui.stage], everything,
                     api_name="upload_config", **fast)
    ui.demo.load(restore, [ui.share_query, ui.baseline], everything + [ui.baseline],
                 api_name="restore",
                 js="(query, baseline) => [window.location.search, baseline]", **fast)
    ui.share_query.change(None, ui.share_query, ui.share_link, js=SHARE_JS)

    # baseline.change, not .input: a link that sets only the baseline redraws the overview too
    gr.on([ui.spec_json.change, ui.baseline.change], overview, [ui.spec_json, ui.baseline],
          [ui.overview, ui.stages, ui.formula], api_name="overview",
          trigger_mode="always_last", **fast)

    # The heavy views follow the last valid spec: an invalid input leaves spec_json as it was,
    # so they keep showing the last valid results.
    gr.on([ui.spec_json.change, ui.stage.input], block_graph, [ui.spec_json, ui.stage],
          [ui.block_html, ui.block_svg, ui.block_dot], api_name="block_graph", **heavy)
    ui.spec_json.change(network_graph, ui.spec_json,
                        [ui.network_html, ui.network_svg, ui.network_dot],
                        api_name="network_graph", **heavy)
    gr.on([ui.spec_json.change, ui.summary_depth.input], summary,
          [ui.spec_json, ui.summary_depth], [ui.summary_totals, ui.summary_table],
          api_name="summary", **heavy)
    ui.spec_json.change(code, ui.spec_json, [ui.code, ui.py_file, ui.json_file, ui.config_file],
                        api_name="code", **heavy)
    ui.block_png.click(block_png, [ui.spec_json, ui.stage], ui.png_file, api_name="block_png",
                       concurrency_limit=2).then(None, ui.png_file, None, js=DOWNLOAD_JS)
    ui.network_png.click(network_png, ui.spec_json, ui.png_file, api_name="network_png",
                         concurrency_limit=2).then(None, ui.png_file, None, js=DOWNLOAD_JS)
    ui.onnx_button.click(onnx, ui.spec_json, [ui.onnx_file, ui.onnx_message], api_name="onnx",
                         concurrency_limit=1)
    gr.api(build, api_name="build", concurrency_limit=2)

    # Timing and the proof share one queue per server ("device"): one run at a time, and the
    # queue shows each waiting user its position; builds and views have their own queues.
    # One queue for the CPU and every GPU, not one per device: a GPU timing needs the host's
    # cores to launch its kernels, so a CPU run beside it would skew it too.
    device = {"concurrency_limit": 1, "concurrency_id": "device", "show_progress": "full"}
    time_inputs = [ui.spec_json, ui.time_device, ui.time_batch, ui.time_size, ui.time_dtype,
                   ui.time_mode, ui.time_channels_last, ui.time_compile, ui.time_scope,
                   ui.time_forms, ui.stage, ui.time_confirmed, ui.timing_results,
                   ui.last_times]
    time_outputs = [ui.time_message, ui.time_table, ui.time_chart, ui.timing_results,
                    ui.last_times, ui.time_confirm]
    ui.time_run.click(time, time_inputs, time_outputs, api_name="time", **device)
    ui.time_confirm.click(time_confirmed, time_inputs, time_outputs, api_name="time_confirmed",
                          **device)
    proof_inputs = [ui.spec_json, ui.proof_scope, ui.stage, ui.proof_batch, ui.proof_train,
                    ui.proof_confirmed]
    proof_outputs = [ui.proof_message, ui.proof_table, ui.proof_contrast, ui.proof_chart,
                     ui.proof_confirm]
    ui.proof_run.click(equivalence, proof_inputs, proof_outputs, api_name="equivalence",
                       **device)
    ui.proof_confirm.click(equivalence_confirmed, proof_inputs, proof_outputs,
                           api_name="equivalence_confirmed", **device)

    compare_inputs = [ui.spec_json, ui.pins_json, ui.last_times]
    compare_outputs = [ui.pins_json, ui.pins_store, ui.compare_table, ui.compare_chart]
    ui.pin.click(compare_action("pin", "Pin the current configuration."), compare_inputs,
                 compare_outputs, api_name="pin", **fast)
    ui.sweep.click(compare_action("sweep", "Pin C in {1, 2, 4, 8, 32} at matched complexity."),
                   compare_inputs, compare_outputs, api_name="sweep", **fast)
    ui.clear_pins.click(compare_action("clear", "Remove every pin."), compare_inputs,
                        compare_outputs, api_name="clear_pins", **fast)
    ui.demo.load(restore_pins, ui.pins_store, compare_outputs, api_name="restore_pins",
                 **fast)
    def compare_api(action: str, spec_json: str, pins_json: str = "[]",
                    last_times: str = "{}") -> dict:
        """Pins without a page: action "pin", "sweep", "clear" or "show" on the pins given
        as JSON; returns {"pins", "table", "chart_svg"}."""
        out = compare_view(action, spec_json, pins_json, last_times)
        return {"pins": json.loads(out[ui.pins_json]), "table": out[ui.compare_table],
                "chart_svg": out[ui.compare_chart]}

    gr.api(compare_api, api_name="compare", concurrency_limit=4)

    learn_outputs = [ui.learn_text, ui.learn_svg]
    ui.learn_tab.select(learn_open, [ui.spec_json, ui.learn_step],
                        learn_outputs + [ui.learn_opened], api_name="learn", **fast)
    ui.spec_json.change(learn_follow, [ui.spec_json, ui.learn_step, ui.learn_opened],
                        learn_outputs, api_name="learn_follow", **heavy)
    # "next" and "previous" count in the browser (so quick clicks all count); the step's
    # change draws it
    last = learn.STEP_COUNT - 1
    ui.learn_next.click(None, ui.learn_step, ui.learn_step,
                        js=f"(step) => Math.min(Math.round(step || 0) + 1, {last})")
    ui.learn_previous.click(None, ui.learn_step, ui.learn_step,
                            js="(step) => Math.max(Math.round(step || 0) - 1, 0)")
    ui.learn_step.change(learn_step, [ui.spec_json, ui.learn_step], learn_outputs,
                         api_name="learn_step", trigger_mode="always_last", **fast)


def timing_settings(spec: ResNeXtSpec, device, batch_size, image_size, dtype, mode,
                    channels_last, compile, forms=False) -> dict:
    """The Timing controls as time_model's keyword arguments (and the spec to time, at the
    image size asked for); SpecError or TimingSettingError (a ValueError) where one is bad.
    The resource guard uses the device's own memory; time_forms holds three models."""
    batch = views.whole(batch_size, "batch_size")
    if image_size not in (None, "", 0):  # an empty box: the spec's own size
        spec = spec.replace(image_size=views.whole(image_size, "image_size"))
    where = timing.resolve_device(device or "auto")  # TimingSettingError for a bad device
    limits = guards.Limits.for_device(where.type, timing.device_total_memory(where))
    guards.check(spec, batch, limits=limits, models=3 if forms else 1,
                 mode="training" if mode == "train" else "inference",
                 dtype_bytes=2 if dtype in ("bf16", "fp16") else 4)
    return {"spec": spec, "batch_size": batch, "device": device or "auto",
            "dtype": dtype or "fp32", "mode": mode or "inference",
            "channels_last": bool(channels_last), "compile": bool(compile)}


def too_long(estimate: float, what: str) -> None:
    """Refuse, even when asked to run anyway, what would hold the device queue far longer than
    MAX_RUN_S (the estimate errs long, up to a few times, so the cap is generous); a run that
    starts is stopped at MAX_RUN_S in any case."""
    if estimate > MAX_RUN_S * ESTIMATE_SLACK:
        raise SpecError(what, f"about {estimate:,.0f} s", f"expected at most about "
                        f"{MAX_RUN_S * ESTIMATE_SLACK:,.0f} s (estimated; a run is stopped after "
                        f"{MAX_RUN_S:,.0f} s): make it smaller (batch, image size, one block)")


def graph_error(exc: Exception) -> str:
    return f"<p class='graph-error'>{html.escape(str(exc))}</p>"


def png_file(spec: ResNeXtSpec, dot: str, name: str) -> str:
    try:
        data = views.graph_png(dot)
    except RuntimeError as exc:  # GraphvizError
        raise gr.Error(str(exc), title="Graphviz") from None
    return write_output(f"{_slug(spec)}-{name}.png", data)


def build_demo() -> gr.Blocks:
    ui = SimpleNamespace()
    # delete_cache: every hour, Gradio removes the files of its cache older than an hour
    with gr.Blocks(title="ResNeXt Block Builder",
                   delete_cache=(OUTPUT_MAX_AGE_S, OUTPUT_MAX_AGE_S)) as demo:
        ui.demo = demo
        layout(ui)
        wire(ui)
    return demo


demo = build_demo()


def theme() -> gr.themes.Base:
    # Soft's fonts are bundled with Gradio (LocalFont): the page needs no network
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ResNeXt Block Builder in the browser")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link (off by default)")
    args = parser.parse_args(argv)
    # a plain `kill` (SIGTERM) exits through atexit too, which removes OUTPUT_DIR
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    demo.queue(default_concurrency_limit=2).launch(
        server_name=args.host, server_port=args.port, share=args.share,
        allowed_paths=[str(OUTPUT_DIR)], max_file_size=MAX_JSON_BYTES * 4,
        theme=theme(), css=CSS, show_error=False,
        # Gradio's run history keeps every event's inputs and outputs (SVGs, the summary,
        # the source) in the browser's localStorage and rewrites all of it after each event:
        # hundreds of kB after a few changes, ~50 ms of every change's latency. The page's
        # state is its link and the pins; a history of every keystroke is not wanted.
        run_history=False)


if __name__ == "__main__":
    main()
