"""Timing: the network (or one block of the stage shown) on one random batch, in its form or
all three side by side. A CPU run estimated to take long waits for "Run anyway"."""

from __future__ import annotations

import html
import json

import gradio as gr

from builder import compare, guards, timing, views
from builder.spec import PRESETS, ResNeXtSpec, SpecError

from .common import (
    DEFAULT_PRESET,
    DEVICE,
    DEVICE_LOCK,
    FAST,
    MAX_RUN_S,
    Page,
    ask_first,
    clamp_stage,
    confirmed,
    not_run,
    parse_spec_json,
    too_long,
)

TITLE, ID = "Timing", "timing"
API_NAMES = ("time", "time_confirmed", "time_follow")
ASK_ABOVE_S = 20.0  # a CPU timing estimated to take longer asks first
MAX_RESULTS = 30  # timing rows kept per session
INPUTS = ["spec_json", "time_device", "time_batch", "time_size", "time_dtype", "time_mode",
          "time_channels_last", "time_compile", "time_scope", "time_forms", "stage",
          "time_confirmed", "timing_results", "last_times"]
OUTPUTS = ["time_message", "time_table", "time_chart", "timing_results", "last_times",
           "time_confirm", "time_columns"]


def layout(page: Page) -> None:
    devices = timing.available_devices()
    gpu = [d for d in devices if d.startswith("cuda")]
    gr.Markdown(
        "Time the network on one random batch: warm-up, then timed iterations; the median "
        "with its spread. " + (f"This server has a GPU ({', '.join(gpu)}) and the CPU."
                               if gpu else "**This server has no GPU: timings run on the "
                               "CPU.**"), elem_id="timing-intro")
    with gr.Row():
        page.add("time_device", gr.Dropdown(devices, value=devices[-1] if gpu else "cpu",
                                            label="Device", elem_id="time-device",
                                            min_width=100))
        page.add("time_batch", gr.Number(8, label="Batch", elem_id="time-batch", min_width=80))
        # a Textbox: Gradio's Number shows an empty value as 0, which reads as a size
        page.add("time_size", gr.Textbox("", label="Image size", info="empty: the spec's",
                                         placeholder=size_placeholder(PRESETS[DEFAULT_PRESET]),
                                         elem_id="time-size", min_width=80, max_length=8))
        page.add("time_dtype", gr.Dropdown(["fp32", "bf16", "fp16", "tf32"], value="fp32",
                                           label="dtype", elem_id="time-dtype", min_width=80))
        page.add("time_mode", gr.Radio(["inference", "train"], value="inference",
                                       label="Mode", elem_id="time-mode"))
    with gr.Row():
        page.add("time_channels_last", gr.Checkbox(False, label="channels_last",
                                                   elem_id="time-channels-last"))
        page.add("time_compile", gr.Checkbox(False, label="torch.compile",
                                             elem_id="time-compile"))
        page.add("time_scope", gr.Radio([("whole network", "network"),
                                         ("one block of the stage shown, in the three forms",
                                          "block")],
                                        value="network", label="What", elem_id="time-scope"))
        page.add("time_forms", gr.Checkbox(False, label="time all three forms side by side",
                                           info="each form a network of its own: three models",
                                           elem_id="time-forms"))
    with gr.Row():
        page.add("time_run", gr.Button("Run timing", variant="primary", elem_id="time-run"))
        page.add("time_confirm", gr.Button("Run anyway", visible=False, variant="stop",
                                           elem_id="time-confirm"))
    page.add("time_confirmed", gr.Checkbox(False, visible="hidden", elem_id="time-confirmed"))
    page.add("time_message", gr.Markdown(elem_id="time-message"))
    page.add("time_table", gr.Dataframe(headers=views.TIMING_HEADERS, interactive=False,
                                        label="Results (newest first)", elem_id="time-table",
                                        wrap=True))
    page.add("time_chart", gr.HTML(elem_id="time-chart"))
    page.add("time_columns", gr.Markdown(views.timing_columns([]), elem_id="time-columns"))


def hidden(page: Page) -> None:
    """After the tabs: the last time per spec (Compare shows it) and this session's rows."""
    page.add("last_times", gr.Textbox("{}", visible="hidden", elem_id="last-times"))
    page.add("timing_results", gr.State([]))


def size_placeholder(spec: ResNeXtSpec) -> str:
    return f"the spec's: {spec.image_size}"


def follow(spec_json, scope) -> dict:
    """The controls that follow the spec and the scope: the image size's placeholder (the
    spec's size, used when the box is empty), and the forms box, hidden for one block (always
    timed in the three forms, as its choice says) and kept as the user left it."""
    spec = parse_spec_json(spec_json)
    return {"time_size": gr.update(placeholder=size_placeholder(spec)),
            "time_forms": gr.update(visible=scope != "block")}


def timing_settings(spec: ResNeXtSpec, device, batch_size, image_size, dtype, mode,
                    channels_last, compile, forms=False) -> dict:
    """The Timing controls as time_model's keyword arguments (and the spec to time, at the
    image size asked for); SpecError or TimingSettingError (a ValueError) where one is bad.
    The resource guard uses the device's own memory; time_forms holds three models."""
    batch = views.whole(batch_size, "batch_size")
    text = "" if image_size is None else str(image_size).strip()
    if text:  # an empty box: the spec's own size
        number = int(text) if text.isdigit() else image_size
        spec = spec.replace(image_size=views.whole(number, "image_size"))
    where = timing.resolve_device(device or "auto")  # TimingSettingError for a bad device
    limits = guards.Limits.for_device(where.type, timing.device_total_memory(where))
    guards.check(spec, batch, limits=limits, models=3 if forms else 1,
                 mode="training" if mode == "train" else "inference",
                 dtype_bytes=2 if dtype in ("bf16", "fp16") else 4)
    return {"spec": spec, "batch_size": batch, "device": device or "auto",
            "dtype": dtype or "fp32", "mode": mode or "inference",
            "channels_last": bool(channels_last), "compile": bool(compile)}


def time(spec_json, device, batch_size, image_size, dtype, mode, channels_last, compile,
         scope, forms, stage, confirmed, results, last_times,
         progress=gr.Progress()):  # noqa: B008 (Gradio's way to ask for a progress bar)
    """Time the network (or one block of the stage shown), in its form or all three
    side by side. A CPU run estimated to take long is not started until confirmed."""
    spec = parse_spec_json(spec_json)
    stage = clamp_stage(spec, stage)
    forms = bool(forms) or scope == "block"  # one block is timed in the three forms
    block = stage if scope == "block" else None
    try:
        settings = timing_settings(spec, device, batch_size, image_size, dtype, mode,
                                   channels_last, compile, forms)
        target = settings.pop("spec")
        estimate = timing.estimate_seconds(
            target, settings["batch_size"], settings["device"], settings["mode"],
            dtype=settings["dtype"], compile=settings["compile"], forms=forms, block=block)
        on_cpu = timing.resolve_device(settings["device"]).type == "cpu"
        too_long(estimate, "timing")
    except (SpecError, ValueError) as exc:  # TimingSettingError is a ValueError
        return {"time_message": not_run(exc), "time_confirm": gr.update(visible=False)}
    if on_cpu and estimate > ASK_ABOVE_S and not confirmed:
        return ask_first("time", "run", estimate, "batch, image size, one block")
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
        return {"time_message": not_run(exc), "time_confirm": gr.update(visible=False)}
    return _shown(run, target, scope, forms, list(results or []), last_times)


def _shown(run: list, target: ResNeXtSpec, scope, forms, results: list, last_times) -> dict:
    """A finished run: its rows above the session's earlier ones, its chart, and (for a
    whole network) each form's time for Compare."""
    times = compare.load_times(last_times)
    for result in run:
        if scope == "network":
            key = target.replace(form=result.settings["spec"]["form"]).to_json(indent=None)
            times[key] = {"median_ms": result.median_ms, "batch_size": result.batch_size,
                          "device": result.device_label.split(",")[0]}
    start = len(results)
    results = [views.timing_row(start + i + 1, r) for i, r in enumerate(run)][::-1] + results
    message = f"Ran on **{run[0].device_label}**; torch {run[0].torch_version}."
    for result in run:
        if result.contended:  # the note is the builder's own text, numbers only
            note = next(n for n in result.notes if n.startswith("contended: "))
            message += (f"\n\n**{html.escape(result.name, quote=False)}:** "
                        f"{html.escape(note, quote=False)}")
    compiled = [r for r in run if r.compile_s is not None]
    if compiled:
        message += "\n\n" + compile_note(compiled)
    if forms:
        message += "\n\n" + views.forms_lesson(run)
    return {"time_message": message, "time_columns": views.timing_columns(run),
            "time_table": {"headers": views.TIMING_HEADERS, "data": results[:MAX_RESULTS]},
            "time_chart": views.timing_chart(run), "timing_results": results[:MAX_RESULTS],
            "last_times": json.dumps(times), "time_confirm": gr.update(visible=False)}


def compile_note(compiled: list) -> str:
    """What a compiled run measured and left out, and why compiled need not beat eager."""
    took = ", ".join(f"{html.escape(r.name, quote=False)} {r.compile_s:,.1f} s"
                     for r in compiled)
    return (f"**torch.compile.** Compiling took {took}: the first warm-up call, in no timed "
            "iteration; the times are of the compiled code, after warm-up. Compiled need not "
            "be faster: the convolutions, nearly all the work here, run as the same library "
            "kernels (oneDNN on the CPU, cuDNN on a GPU) compiled or not; compile fuses the BN, "
            "ReLU and add around them and drops Python's per-layer overhead, which saves little "
            "where the convolutions dominate, and its generated code can be slower for some "
            "shapes.")


time_confirmed = confirmed(time, "The same run, after its estimate was shown and accepted.")


def wire(page: Page) -> None:
    page.on("time_run.click", time, INPUTS, OUTPUTS, api_name="time", **DEVICE)
    page.on("time_confirm.click", time_confirmed, INPUTS, OUTPUTS, api_name="time_confirmed",
            **DEVICE)
    page.on(["spec_json.change", "time_scope.change"], follow, ["spec_json", "time_scope"],
            ["time_size", "time_forms"], api_name="time_follow", **FAST)
