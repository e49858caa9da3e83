"""The left column: the preset, one control per spec field (made from builder.spec's field
metadata), keep-complexity and the baseline, the share link and the JSON config.

Changing a control updates the analytics at once (`analyze`); the views follow the hidden
`spec_json`, which only a valid spec changes, so they keep showing the last valid results."""

from __future__ import annotations

import gradio as gr

from builder import share, views
from builder.complexity import matched_width
from builder.spec import FIELDS, MAX_JSON_BYTES, PRESETS, ResNeXtSpec, SpecError, spec_fields

from .common import (
    DEFAULT_PRESET,
    FAST,
    Page,
    clamp_stage,
    md_text,
    spec_kwargs,
    with_signature,
)

API_NAMES = ("analyze", "preset", "add_stage", "remove_stage", "upload_config", "restore")

# The page's rows: fields side by side, with their min_width. A field not named here gets a
# row of its own after these (under "More" when it is `advanced`), in the spec's order, so a
# new spec field shows up without an edit here.
ROWS = ((("cardinality", "width_per_group"), 120), (("depths",), None), (("form",), None),
        (("block",), None), (("stem",), None), (("stride_on",), None),
        (("image_size", "num_classes"), 100))
SHOW_HELP = ("cardinality", "width_per_group", "depths")  # the others' help is not shown
# The page's share link: this page's address with the configuration's query string; the
# address bar follows too, so the link can be copied from either place.
# The address bar keeps Gradio's own `__theme` (dark mode) so that a reload keeps it; the
# share link leaves it out (the receiver's own setting applies).
SHARE_JS = """(query) => {
  const url = window.location.origin + window.location.pathname + (query || '');
  const theme = new URLSearchParams(window.location.search).get('__theme');
  const here = theme ? url + (query ? '&' : '?') + '__theme=' + encodeURIComponent(theme) : url;
  try { window.history.replaceState(null, '', here); } catch (e) {}
  return url;
}"""


def field_order() -> list[str]:
    """The spec fields in page order: the handlers' positional inputs follow it. (It is
    spec_fields() order but for image size before classes, as the API has always had it.)"""
    placed = [name for names, _ in ROWS for name in names]
    rest = [f.name for f in spec_fields() if f.name not in placed]
    return (placed + [n for n in rest if not FIELDS[n].advanced]
            + [n for n in rest if FIELDS[n].advanced])


VIEW_INPUTS = ["keep", "baseline", "stage"]  # besides the spec's fields, what analyze takes
ANALYTICS = ["error", "headline", "stage", "spec_json", "share_query", "width_per_group"]


def everything_names() -> list[str]:
    """The outputs of a preset, a link or a config: the analytics, then every control."""
    return ANALYTICS + ["preset", "keep"] + [n for n in field_order() if n != "width_per_group"]


# -- layout ------------------------------------------------------------------------------------

def spec_control(info, spec: ResNeXtSpec, min_width: int | None = None):
    """The control of one spec field, by its kind, showing the spec's value."""
    value = getattr(spec, info.name)
    common = {"label": info.label, "elem_id": info.control}
    if info.name in SHOW_HELP:
        common["info"] = info.help
    if min_width:
        common["min_width"] = min_width
    if info.kind == "int":
        return gr.Number(value, **common)
    if info.kind == "depths":
        return gr.Textbox(views.format_depths(value), **common)
    if info.kind == "choice":  # read now: forms registered at run time are listed too
        return gr.Radio([(label, key) for key, label in info.choices], value=value, **common)
    return gr.Checkbox(bool(value), **common)


def layout(page: Page) -> None:
    spec0 = PRESETS[DEFAULT_PRESET]
    # first in the column and sticky: a message stays in view next to whichever control
    # the user is editing
    page.add("error", gr.Markdown(visible=False, elem_id="spec-error"))
    page.add("preset", gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Preset",
                                   info="start from a named network", elem_id="preset"))
    placed = {name for names, _ in ROWS for name in names}
    rows = list(ROWS) + [((n,), None) for n in field_order()
                         if n not in placed and not FIELDS[n].advanced]
    for names, min_width in rows:
        if len(names) == 1:
            page.add(names[0], spec_control(FIELDS[names[0]], spec0, min_width))
        else:
            with gr.Row():
                for name in names:
                    page.add(name, spec_control(FIELDS[name], spec0, min_width))
        if "width_per_group" in names:
            _keep_row(page)
        if "depths" in names:
            _stage_buttons(page)
    with gr.Accordion("More", open=False):
        for name in field_order():
            if FIELDS[name].advanced:
                page.add(name, spec_control(FIELDS[name], spec0))
    with gr.Accordion("Share", open=True):
        page.add("share_link", gr.Textbox(label="Link to this configuration",
                                          buttons=["copy"], elem_id="share-link",
                                          interactive=False))
        with gr.Row():
            page.add("upload", gr.UploadButton("Upload JSON config", file_types=[".json"],
                                               size="sm", elem_id="upload-config"))
            page.add("config_file", gr.DownloadButton("Download JSON config", size="sm",
                                                      elem_id="config-download"))
    page.add("share_query", gr.Textbox(visible="hidden", elem_id="share-query"))
    page.add("spec_json", gr.Textbox(visible="hidden", elem_id="spec-json"))


def _keep_row(page: Page) -> None:
    with gr.Row(equal_height=True):
        page.add("keep", gr.Checkbox(False, label="Keep the baseline's complexity",
                                     info="solve d for this C", elem_id="keep", min_width=140))
        page.add("baseline", gr.Dropdown(views.BASELINE_CHOICES, value=views.DEFAULT_BASELINE,
                                         label="Baseline", info="kept, and compared against",
                                         elem_id="baseline", min_width=140))


def _stage_buttons(page: Page) -> None:
    with gr.Row():
        page.add("add_stage", gr.Button("+ stage", size="sm", elem_id="add-stage",
                                        min_width=80))
        page.add("remove_stage", gr.Button("− stage", size="sm", elem_id="remove-stage",
                                           min_width=80))


# -- handlers ----------------------------------------------------------------------------------

def refresh(spec: ResNeXtSpec, preset, baseline, stage, keep_complexity) -> dict:
    """Every fast output for a valid spec."""
    stage = clamp_stage(spec, stage)
    kept = baseline if baseline in PRESETS else None  # "auto", the default, goes unsaid
    return {
        "error": gr.update(value="", visible=False),
        "headline": views.headline(spec),
        "stage": gr.update(choices=views.stage_choices(spec), value=stage),
        "spec_json": spec.to_json(indent=None),
        "share_query": "?" + share.to_query(spec, preset, stage, baseline=kept),
        "width_per_group": gr.update(value=spec.width_per_group,
                                     interactive=not keep_complexity),
    }


def control_values(spec: ResNeXtSpec, preset) -> dict:
    """Every control set to the spec (keep-complexity off)."""
    out = {"preset": preset, "keep": False}
    for info in spec_fields():
        value = getattr(spec, info.name)
        out[info.name] = views.format_depths(value) if info.kind == "depths" else value
    return out


def invalid(exc: SpecError, what: str = "Not applied.") -> dict:
    """Only the message changes: the last valid results stay on the page. The message is in
    the page's words (labels, values as typed); an empty marker names the bad field's
    control, which the page's CSS then outlines (ui.page.field_error_css)."""
    name = views.field_of(exc)
    marker = f'<span class="bad-field bad-{FIELDS[name].control}"></span>' if name else ""
    return {"error": gr.update(value=f"**{what}** {md_text(views.user_message(exc))}{marker}",
                               visible=True)}


def solve(values: dict, keep_complexity, baseline) -> ResNeXtSpec:
    """The spec of the controls' values ({field: value}); with keep-complexity, d solved so
    that the first stage's block keeps the baseline's complexity."""
    if keep_complexity:  # d is solved below; any placeholder will do
        values = {**values, "width_per_group": 1}
    spec = ResNeXtSpec(**spec_kwargs(list(values), list(values.values())))
    if keep_complexity:
        reference = views.baseline_spec(baseline, spec)
        spec = spec.replace(width_per_group=matched_width(spec, reference))
    return spec


def _split(args) -> tuple:
    """analyze's positional inputs -> preset, {field: value}, keep, baseline, stage."""
    names = field_order()
    if len(args) != len(names) + 4:
        raise TypeError(f"expected {len(names) + 4} inputs, got {len(args)}")
    preset, *values, keep, baseline, stage = args
    return preset, dict(zip(names, values, strict=True)), keep, baseline, stage


def analyze(*args) -> dict:
    preset, values, keep, baseline, stage = _split(args)
    try:
        spec = solve(values, keep, baseline)
    except SpecError as exc:
        return invalid(exc)
    return refresh(spec, preset, baseline, stage, keep)


def _edit_stages(change, args) -> dict:
    preset, values, keep, baseline, stage = _split(args)
    try:
        depths = views.format_depths(change(views.parse_depths(values["depths"])))
    except SpecError as exc:
        return invalid(exc)
    out = analyze(preset, *{**values, "depths": depths}.values(), keep, baseline, stage)
    return out if "spec_json" not in out else {**out, "depths": depths}


def add_stage(*args) -> dict:
    return _edit_stages(views.add_stage, args)


def remove_stage(*args) -> dict:
    return _edit_stages(views.remove_stage, args)


def _inputs() -> list[str]:
    return ["preset", *field_order(), "keep_complexity", "baseline", "stage"]


with_signature(analyze, _inputs(), """Controls -> the analytics: params, multiply-adds, FLOPs,
    per-stage table, formula, change against the baseline, the spec as JSON and the share
    link's query string.""")
with_signature(add_stage, _inputs(), "Append a stage as deep as the last.")
with_signature(remove_stage, _inputs(), "Remove the last stage.")


def apply_preset(preset, baseline, stage) -> dict:
    """A preset fills every control."""
    if preset not in PRESETS:
        return invalid(SpecError("preset", preset, f"expected one of {', '.join(PRESETS)}"))
    spec = PRESETS[preset]
    return {**refresh(spec, preset, baseline, stage, False), **control_values(spec, preset)}


def restore(query, baseline) -> dict:
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
           **control_values(shared.spec, preset), "baseline": baseline}
    if error is not None:
        out.update(invalid(error, "The link was not applied."))
    return out


def upload_config(path, preset, baseline, stage) -> dict:
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
    return {**refresh(spec, preset, baseline, stage, False), **control_values(spec, preset)}


# -- events ------------------------------------------------------------------------------------

def wire(page: Page) -> None:
    edit = ["preset", *field_order(), *VIEW_INPUTS]
    analytics, everything = ANALYTICS, everything_names()
    # typing fires `input`; a paste or a script that sets the text fires only `blur`/`submit`
    triggers = [f"{n}.input" for n in field_order() + VIEW_INPUTS] + ["depths.submit",
                                                                      "depths.blur"]
    page.on(triggers, analyze, edit, analytics, api_name="analyze",
            trigger_mode="always_last", **FAST)
    page.on("preset.input", apply_preset, ["preset", "baseline", "stage"], everything,
            api_name="preset", **FAST)
    page.on("add_stage.click", add_stage, edit, analytics + ["depths"], api_name="add_stage",
            **FAST)
    page.on("remove_stage.click", remove_stage, edit, analytics + ["depths"],
            api_name="remove_stage", **FAST)
    page.on("upload.upload", upload_config, ["upload", "preset", "baseline", "stage"],
            everything, api_name="upload_config", **FAST)
    page.on("demo.load", restore, ["share_query", "baseline"], everything + ["baseline"],
            api_name="restore", js="(query, baseline) => [window.location.search, baseline]",
            **FAST)
    page.on("share_query.change", None, "share_query", "share_link", js=SHARE_JS)
