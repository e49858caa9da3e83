"""Weights: upload a checkpoint, see the spec its shapes tell (and what was assumed), apply it
to the controls, and convert it to another form and format (safetensors, a timm folder as a
.zip, a torch.export .pt2, model.py). Files are read safely (builder.weights: safetensors, or
torch.load with weights_only); the upload is kept only in the app's output folder."""

from __future__ import annotations

import hashlib
import html
import io
import shutil
import tempfile
import zipfile
from pathlib import Path

import gradio as gr

from builder import export_weights, infer, share, views
from builder import weights as W
from builder.registry import FORMS
from builder.spec import ResNeXtSpec, SpecError

from .common import FAST, HEAVY, OUTPUT_DIR, Page, slug, write_output
from .controls import control_values, everything_names, refresh

TITLE, ID = "Weights", "weights"
API_NAMES = ("weights_upload", "weights_apply", "weights_convert")
FORMATS = (("safetensors", "safetensors"), ("timm folder (.zip)", "timm"),
           ("torch.export (.pt2)", "pt2"), ("model.py", "model.py"))
SUFFIXES = [*W.SAFETENSORS_SUFFIXES, *W.PICKLE_SUFFIXES]


def layout(page: Page) -> None:
    gr.Markdown("Load a checkpoint (.safetensors, or .pth/.pt/.bin read with "
                "`weights_only`: nothing in it runs). Its shapes tell the spec; convert it to "
                "another form or format.", elem_id="weights-intro")
    page.add("weights_file", gr.File(file_types=SUFFIXES, type="filepath", label="Checkpoint",
                                     elem_id="weights-file"))
    page.add("weights_note", gr.Markdown(elem_id="weights-note"))
    page.add("weights_apply", gr.Button("Apply to the controls", size="sm", interactive=False,
                                        elem_id="weights-apply"))
    with gr.Row():
        page.add("weights_form", gr.Radio([(f"({k})", k) for k in FORMS], value="c",
                                          label="Form", elem_id="weights-form"))
        page.add("weights_format", gr.Radio(list(FORMATS), value="safetensors",
                                            label="Format", elem_id="weights-format"))
    with gr.Row(elem_classes="downloads"):
        page.add("weights_convert", gr.Button("Convert", variant="primary", size="sm",
                                              elem_id="weights-convert"))
        page.add("weights_download", gr.DownloadButton("download", size="sm", visible=False,
                                                       elem_id="weights-download"))
    page.add("weights_message", gr.Markdown(elem_id="weights-message"))


def hidden(page: Page) -> None:
    # {"path", "name", "spec", "preset"}: the last valid upload; {} until one
    page.add("weights_state", gr.State({}))


def _refused(exc: Exception, what: str = "Not loaded.") -> str:
    return f"**{what}** {html.escape(str(exc), quote=False)}"


def upload(path) -> dict:
    """A checkpoint: stat-checked (size cap) before a byte is read, copied into the output
    folder, read safely and its spec inferred. A bad file changes only the note."""
    if not path:
        return {"weights_note": "**Not loaded.** No file."}
    try:
        W.check_file(path, W.MAX_WEIGHTS_BYTES)
        name = Path(str(path)).name
        digest = hashlib.sha1(f"{path}:{Path(path).stat().st_mtime_ns}".encode()).hexdigest()
        kept = OUTPUT_DIR / "uploads" / digest[:12] / name
        kept.parent.mkdir(parents=True, exist_ok=True)
        if Path(path).resolve() != kept.resolve():
            shutil.copyfile(path, kept)
        inferred = infer.infer_spec(W.read_shapes(kept, W.MAX_WEIGHTS_BYTES), source=name)
    except (W.WeightsError, SpecError, OSError) as exc:
        return {"weights_note": _refused(exc)}
    state = {"path": str(kept), "name": name, "spec": inferred.spec.to_json(indent=None),
             "preset": inferred.preset}
    return {"weights_note": note(inferred, name), "weights_state": state,
            "weights_apply": gr.update(interactive=True),
            "weights_form": inferred.spec.form}


def note(inferred, name: str) -> str:
    """What the weights told and what was assumed, escaped (the file name is the user's)."""
    spec = inferred.spec
    lines = [f"**{html.escape(name)}**: {html.escape(spec.name)}, form ({spec.form}); "
             f"C = {spec.cardinality}, d = {spec.width_per_group}, depths "
             f"{views.format_depths(spec.depths)}; "
             + (f"the preset **{html.escape(inferred.preset)}**." if inferred.preset
                else "no preset."), ""]
    lines += [f"- {html.escape(n)}" for n in inferred.notes[1:]]
    return "\n".join(lines)


def apply(state, preset, baseline, stage) -> dict:
    """The inferred spec into every control, as a JSON config is applied."""
    if not state:
        return {"error": gr.update(value="**Not applied.** No weights loaded.", visible=True)}
    spec = ResNeXtSpec.from_json(state["spec"])
    preset = state.get("preset") or share.preset_of(spec) or preset
    return {**refresh(spec, preset, baseline, stage, False), **control_values(spec, preset)}


def convert(state, form, fmt) -> dict:
    """The loaded weights in `form`, as `fmt`: a file in the output folder."""
    if not state:
        return {"weights_message": "**Not converted.** No weights loaded.",
                "weights_download": gr.update(visible=False)}
    spec, name = ResNeXtSpec.from_json(state["spec"]), state["name"]
    try:
        if form not in FORMS:
            raise SpecError("form", form, f"expected one of {', '.join(FORMS)}")
        tensors = W.read_state_dict(state["path"], W.MAX_WEIGHTS_BYTES)
        target = spec.replace(form=form)
        converted = export_weights.convert_state(spec, tensors, form, source=name)
        data, suffix = _produce(fmt, spec, target, tensors, converted, name)
    except (W.WeightsError, SpecError, export_weights.TimmUnsupported, OSError) as exc:
        return {"weights_message": _refused(exc, "Not converted."),
                "weights_download": gr.update(visible=False)}
    digest = hashlib.sha1(data).hexdigest()[:8]
    path = write_output(f"{slug(target)}-weights-{digest}{suffix}", data)
    return {"weights_message": f"Ready: {html.escape(Path(path).name)}, "
                               f"{views.fmt_bytes(len(data))}.",
            "weights_download": gr.update(value=path, visible=True)}


def _produce(fmt, spec, target, tensors, converted, name) -> tuple[bytes, str]:
    """The file's bytes and suffix. timm's folder is in form (c) whatever the form asked."""
    if fmt == "model.py":
        return views.source(target).encode("utf-8"), ".py"
    with tempfile.TemporaryDirectory(dir=OUTPUT_DIR) as folder:
        out = Path(folder)
        if fmt == "safetensors":
            W.save_safetensors(converted, out / "w.safetensors", {
                "format": "pt", "spec": target.to_json(indent=None),
                "weights": f"loaded from {name}", "exporter": "resnext-builder"})
            return (out / "w.safetensors").read_bytes(), ".safetensors"
        if fmt == "pt2":
            export_weights.export_pt2(target, out / "m.pt2", converted, name)
            return (out / "m.pt2").read_bytes(), ".pt2"
        if fmt == "timm":
            export_weights.export_timm(spec, out / "timm", tensors, name)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted((out / "timm").iterdir()):
                    archive.write(file, file.name)
            return buffer.getvalue(), "-timm.zip"
    raise SpecError("format", fmt, f"expected one of {', '.join(v for _, v in FORMATS)}")


def wire(page: Page) -> None:
    page.on("weights_file.upload", upload, "weights_file",
            ["weights_note", "weights_state", "weights_apply", "weights_form"],
            api_name="weights_upload", **HEAVY)
    page.on("weights_apply.click", apply, ["weights_state", "preset", "baseline", "stage"],
            everything_names(), api_name="weights_apply", **FAST)
    page.on("weights_convert.click", convert,
            ["weights_state", "weights_form", "weights_format"],
            ["weights_message", "weights_download"], api_name="weights_convert", **HEAVY)
