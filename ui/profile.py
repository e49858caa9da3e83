"""Profile: where the time goes. Per layer self time under torch.profiler (optionally the
three forms with the same weights), the roofline, memory estimated against measured, the FLOP
counters side by side, the Chrome trace and "equal FLOPs, different speed"."""

from __future__ import annotations

import hashlib
import html
import json
import re
import tempfile
from pathlib import Path

import gradio as gr

from builder import flops, learn, roofline, timing, views
from builder.registry import FORMS
from builder.spec import ResNeXtSpec, SpecError
from builder.timing import breakdown
from builder.timing.memory import measure_memory
from builder.timing.profile import MAX_PROFILED

from .common import (
    DEVICE,
    DEVICE_LOCK,
    MAX_RUN_S,
    OUTPUT_DIR,
    Page,
    ask_first,
    confirmed,
    not_run,
    parse_spec_json,
    slug,
    too_long,
    write_output,
)
from .timing import ASK_ABOVE_S, timing_settings

TITLE, ID = "Profile", "profile"
API_NAMES = ("profile", "profile_confirmed")
TOP = 30  # layer rows shown
LAYER_HEADERS = list(timing.LAYER_COLUMNS)
FORM_HEADERS = ["form", "step ms", "plain ms", "op calls", "kernels", "layers %",
                "profiler overhead"]
MEMORY_HEADERS = ["form", "mode", "estimated MiB", "measured MiB", "estimated / measured",
                  "how"]
COUNTER_HEADERS = ["counter", "convention", "forward GFLOP", "fwd+bwd GFLOP", "reason"]
# fixed widths that fit the results column at 1440 px; a phone scrolls the table sideways
MEMORY_WIDTHS = ["64px", "96px", "104px", "104px", "112px", "360px"]
COUNTER_WIDTHS = ["140px", "220px", "88px", "88px", "340px"]
KIND_WIDTHS = ["220px", "96px"] + ["184px"] * len(FORMS)  # one column a form, at most
INPUTS = ["spec_json", "profile_device", "profile_batch", "profile_dtype", "profile_mode",
          "profile_channels_last", "profile_forms", "profile_iters", "profile_confirmed"]
OUTPUTS = ["profile_message", "profile_layers", "profile_forms_table", "profile_kinds",
           "profile_heat",
           "profile_roofline", "profile_memory", "profile_counters", "profile_trace",
           "profile_lesson", "profile_confirm"]


def layout(page: Page) -> None:
    devices = timing.available_devices()
    gpu = [d for d in devices if d.startswith("cuda")]
    gr.Markdown("Where the time goes: each layer's self time under torch.profiler, its "
                "multiply-adds, bytes moved and achieved TFLOP/s, against this device's "
                "roofline.", elem_id="profile-intro")
    with gr.Row():
        page.add("profile_device", gr.Dropdown(devices, value=devices[-1] if gpu else "cpu",
                                               label="Device", elem_id="profile-device",
                                               min_width=100))
        page.add("profile_batch", gr.Number(8, label="Batch", elem_id="profile-batch",
                                            min_width=80))
        page.add("profile_iters", gr.Number(10, label="Iterations", elem_id="profile-iters",
                                            info="timed plainly; at most 5 profiled",
                                            min_width=80))
        page.add("profile_dtype", gr.Dropdown(["fp32", "bf16", "fp16", "tf32"], value="fp32",
                                              label="dtype", elem_id="profile-dtype",
                                              min_width=80))
        page.add("profile_mode", gr.Radio(["inference", "train"], value="inference",
                                          label="Mode", elem_id="profile-mode"))
    with gr.Row():
        page.add("profile_channels_last", gr.Checkbox(False, label="channels_last",
                                                      elem_id="profile-channels-last"))
        page.add("profile_forms", gr.Checkbox(True, label="profile all three forms (same "
                                              "weights)", elem_id="profile-forms-box"))
    with gr.Row():
        page.add("profile_run", gr.Button("Run profile", variant="primary",
                                          elem_id="profile-run"))
        page.add("profile_confirm", gr.Button("Run anyway", visible=False, variant="stop",
                                              elem_id="profile-confirm"))
        page.add("profile_trace", gr.DownloadButton("trace.json", size="sm", visible=False,
                                                    elem_id="profile-trace"))
    page.add("profile_confirmed", gr.Checkbox(False, visible="hidden",
                                              elem_id="profile-confirmed"))
    page.add("profile_message", gr.Markdown(elem_id="profile-message"))
    page.add("profile_layers", gr.Dataframe(headers=LAYER_HEADERS, interactive=False,
                                            label=f"Layers (top {TOP}, by self time)",
                                            elem_id="profile-layers", wrap=True))
    page.add("profile_forms_table", gr.Dataframe(headers=FORM_HEADERS, interactive=False,
                                                 label="Forms: equal in math, not in time",
                                                 elem_id="profile-forms", wrap=True))
    page.add("profile_kinds", gr.Dataframe(
        headers=["kind", "% of multiply-adds", "form (c)"], interactive=False, wrap=True,
        label="By kind: the share of the step against the share of the multiply-adds",
        elem_id="profile-kinds", column_widths=KIND_WIDTHS, max_height=900))
    page.add("profile_heat", gr.HTML(elem_id="profile-heat"))
    page.add("profile_roofline", gr.HTML(elem_id="profile-roofline"))
    page.add("profile_memory", gr.Dataframe(headers=MEMORY_HEADERS, interactive=False,
                                            label="Memory: the guards' estimate and the "
                                            "measured peak", elem_id="profile-memory",
                                            wrap=True, column_widths=MEMORY_WIDTHS))
    page.add("profile_counters", gr.Dataframe(headers=COUNTER_HEADERS, interactive=False,
                                              label="FLOP counters side by side", wrap=True,
                                              elem_id="profile-counters", max_height=1000,
                                              column_widths=COUNTER_WIDTHS))
    page.add("profile_lesson", gr.Markdown(latex_delimiters=[
        {"left": "$", "right": "$", "display": False}], elem_id="profile-lesson"))


# -- tables ------------------------------------------------------------------------------------

def layer_rows(form_profile) -> list[list[str]]:
    """The slowest TOP layers, then every layer's totals."""
    return ([r.cells() for r in form_profile.layers[:TOP]]
            + ([form_profile.totals().cells()] if form_profile.layers else []))


def form_rows(result) -> list[list[str]]:
    return [[f"({f})", f"{p.total_ms:.3f}", f"{p.plain_ms:.3f}", str(p.op_calls),
             str(p.kernels), f"{100 * p.coverage:.1f}", f"{100 * p.overhead:+.0f}%"]
            for f, p in result.forms.items()]


def memory_rows(rows) -> list[list[str]]:
    return [[f"({m.form})", m.mode, f"{m.estimated_bytes / 2**20:.1f}",
             f"{m.measured_bytes / 2**20:.1f}", f"{m.ratio:.2f}", m.how] for m in rows]


def counter_rows(rows) -> list[list[str]]:
    def g(n):
        return "--" if n is None else f"{n / 1e9:.4g}"
    return [[r.counter, r.convention, g(r.forward_flops), g(r.forward_backward_flops),
             r.reason or "agrees"] for r in rows]


def roofline_html(result) -> str:
    """The roofline drawn by matplotlib as SVG, embedded (its text is matplotlib's, escaped
    by it; the spec's name in the title is the builder's own)."""
    with tempfile.TemporaryDirectory(dir=OUTPUT_DIR) as folder:
        path = Path(folder) / "roofline.svg"
        roofline.plot(result, str(path))
        svg = path.read_text(encoding="utf-8")
    return (views.svg_html(svg, "roofline")
            + f'<p class="roofline-caption">{html.escape(roofline.caption(result))}</p>')


# -- the heat map: the block drawing coloured by measured self time ---------------------------

def _node_ids(local: str) -> list[str]:
    """The drawing's node ids (builder/graph.py) of a layer path inside a block."""
    if local == "(own ops)":
        return ["add", "sum", "concat"]
    found = re.fullmatch(r"paths\.(\d+)\.(\w+)", local)
    if found:
        i, name = found.groups()
        return [f"path{i}_{name}"] + ([f"path{i}_relu1", f"path{i}_relu2"]
                                      if name == "relu" else [])
    if local == "relu":  # one ReLU module, called after each BN
        return ["relu", "relu1", "relu2"]
    return {"downsample.0": ["shortcut_conv"], "downsample.1": ["shortcut_bn"]}.get(
        local, [local])


def heat_svg(svg: str, times: dict[str, float]) -> str:
    """Each node with a time filled from white (none) to red (the block's slowest layer)."""
    top = max(times.values(), default=0.0) or 1.0

    def fill(match: re.Match) -> str:
        ms = times.get(match.group(2))
        if ms is None:
            return match.group(0)
        shade = round(255 * (1 - ms / top))
        return f'{match.group(1)}fill="#ff{shade:02x}{shade:02x}"'

    return re.sub(r'(<g id="([^"]+)" class="node[^"]*">.*?<(?:polygon|ellipse|path)[^>]*?)'
                  r'fill="[^"]*"', fill, svg, flags=re.S)


def heat_html(result) -> str:
    """The first block of stage 1 in the profiled form, coloured by its layers' self time."""
    prefix = "layer1.0."
    times: dict[str, float] = {}
    for r in result.main.layers:
        if r.name.startswith(prefix):
            for node in _node_ids(r.name[len(prefix):]):
                times[node] = times.get(node, 0.0) + r.self_ms
        elif r.name == "layer1.0 (own ops)":
            for node in _node_ids("(own ops)"):
                times[node] = times.get(node, 0.0) + r.self_ms
    try:
        svg = views.block_svg(result.spec.replace(form=result.form), 0, 0)
    except RuntimeError as exc:  # Graphviz failed
        return f"<p class='graph-error'>{html.escape(str(exc))}</p>"
    slowest = max(times.values(), default=0.0)
    return (f"<p>Stage 1, block 1 in form ({html.escape(result.form)}), each layer shaded by "
            f"its measured self time (darkest red: {slowest:.3f} ms).</p>"
            + views.svg_html(heat_svg(svg, times), "block heat map"))


# -- the handler -------------------------------------------------------------------------------

def _estimate(target: ResNeXtSpec, settings: dict, iters: int, forms: bool) -> float:
    """The profile's iterations (warm-up, plain, profiled, one with the hooks) and the memory
    steps (two per form and mode), by timing's own cost model."""
    common = {k: settings[k] for k in ("device", "dtype", "channels_last")}
    profiled = iters + min(iters, MAX_PROFILED) + 1
    seconds = timing.estimate_seconds(target, batch_size=settings["batch_size"],
                                      mode=settings["mode"], iters=profiled, forms=forms,
                                      **common)
    for mode in ("inference", "train"):
        seconds += timing.estimate_seconds(target, batch_size=settings["batch_size"],
                                           mode=mode, iters=2, warmup=0, forms=forms,
                                           measure=False, **common)
    return seconds


def profile(spec_json, device, batch_size, dtype, mode, channels_last, forms, iters,
            confirmed, progress=gr.Progress()):  # noqa: B008 (Gradio's progress bar)
    """Profile the network (all three forms with the same weights, or the spec's own), and
    measure its memory and count its FLOPs. A CPU run estimated to take long is not started
    until confirmed."""
    spec = parse_spec_json(spec_json)
    order = tuple(FORMS) if forms else None
    try:
        iters = views.whole(iters if iters not in (None, "") else 10, "iters")
        settings = timing_settings(spec, device, batch_size, None, dtype, mode, channels_last,
                                   False, bool(forms))
        target = settings.pop("spec")
        settings.pop("compile")
        estimate = _estimate(target, settings, iters, bool(forms))
        on_cpu = timing.resolve_device(settings["device"]).type == "cpu"
        too_long(estimate, "profile")
        run = timing.TimingSettings(iters=iters, deadline_s=MAX_RUN_S, **settings)
    except (SpecError, ValueError) as exc:  # TimingSettingError is a ValueError
        return {"profile_message": not_run(exc), "profile_confirm": gr.update(visible=False)}
    if on_cpu and estimate > ASK_ABOVE_S and not confirmed:
        return ask_first("profile", "profile", estimate, "batch, iterations, one form")
    progress(0.0, desc=f"profiling on {settings['device']} (about {estimate:,.0f} s)")
    try:
        with DEVICE_LOCK:
            result = timing.profile(target, run, forms=order,
                                    progress=lambda f, text: progress(0.9 * f, desc=text))
            progress(0.9, desc="measuring memory")
            memory = measure_memory(target, run, forms=order)
    except (timing.TimingError, ValueError) as exc:
        return {"profile_message": not_run(exc), "profile_confirm": gr.update(visible=False)}
    return shown(result, memory, flops.flop_counters(target, settings["batch_size"]))


def shown(result, memory, counters) -> dict:
    """A finished profile on the page."""
    main = result.main
    with tempfile.TemporaryDirectory(dir=OUTPUT_DIR) as folder:
        result.export_chrome_trace(str(Path(folder) / "trace.json"))
        data = (Path(folder) / "trace.json").read_bytes()
    trace = write_output(f"{slug(result.spec)}-trace-{hashlib.sha1(data).hexdigest()[:8]}"
                         ".json", data)
    message = [f"Profiled **{html.escape(main.name)}** on **{html.escape(result.device_name)}**"
               f" (batch {result.batch_size}, {result.iterations} profiled iterations; torch "
               f"{result.torch_version}): step {main.total_ms:.2f} ms, layers "
               f"{100 * main.coverage:.1f}% of it."]
    message += [f"- {html.escape(note)}" for note in result.notes]
    if result.peak_note:
        message.append(f"- {html.escape(result.peak_note)}")
    return {"profile_message": "\n".join(message),
            "profile_layers": {"headers": LAYER_HEADERS, "data": layer_rows(main)},
            "profile_forms_table": {"headers": FORM_HEADERS, "data": form_rows(result)},
            "profile_kinds": dict(zip(("headers", "data"), breakdown.table(result),
                                      strict=True)),
            "profile_heat": heat_html(result), "profile_roofline": roofline_html(result),
            "profile_memory": {"headers": MEMORY_HEADERS, "data": memory_rows(memory)},
            "profile_counters": {"headers": COUNTER_HEADERS, "data": counter_rows(counters)},
            "profile_trace": gr.update(value=trace, visible=True),
            "profile_lesson": learn.equal_flops_step(result.spec, result)["text"],
            "profile_confirm": gr.update(visible=False)}


profile_confirmed = confirmed(profile, "The same profile, after its estimate was accepted.")


def trace_json(path: str) -> dict:
    """A trace file read back (for tests and the API's users)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def wire(page: Page) -> None:
    page.on("profile_run.click", profile, INPUTS, OUTPUTS, api_name="profile", **DEVICE)
    page.on("profile_confirm.click", profile_confirmed, INPUTS, OUTPUTS,
            api_name="profile_confirmed", **DEVICE)
