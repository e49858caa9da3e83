"""Code: the standalone model source, its .py, .json and config downloads, ONNX on request."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import gradio as gr

from builder import views
from builder.spec import SpecError

from .common import HEAVY, OUTPUT_DIR, Page, md_text, parse_spec_json, slug, write_output

TITLE, ID = "Code", "code"
API_NAMES = ("code", "onnx")


def layout(page: Page) -> None:
    with gr.Row(elem_classes="downloads"):
        page.add("py_file", gr.DownloadButton("model.py", size="sm", elem_id="py-download"))
        page.add("json_file", gr.DownloadButton("spec.json", size="sm",
                                                elem_id="json-download"))
        page.add("onnx_button", gr.Button("Export ONNX", size="sm", elem_id="onnx-export"))
        page.add("onnx_file", gr.DownloadButton("model.onnx", size="sm", visible=False,
                                                elem_id="onnx-download"))
    page.add("onnx_message", gr.Markdown(elem_id="onnx-message"))
    page.add("code", gr.Code(language="python", interactive=False, lines=24, max_lines=40,
                             label="Standalone PyTorch source", elem_id="code"))


def code(spec_json) -> dict:
    """The standalone model source, and the .py and .json files."""
    from builder.export import export_json

    spec = parse_spec_json(spec_json)
    source = views.source(spec)
    # named model.py (importable: `from model import build_model`), in a folder per spec
    return {"code": source, "py_file": write_output(f"{slug(spec)}/model.py", source),
            "json_file": write_output(f"{slug(spec)}.json", export_json(spec)),
            "config_file": write_output(f"{slug(spec)}-config.json", spec.to_json())}


# ONNX keeps weights over 2 GB in a .onnx.data file beside the .onnx: such a model is offered
# as one .zip of both. Above this many bytes of fp32 weights the export is refused (its
# disk, memory and time: the zip alone is as big as the weights).
ONNX_MAX_PARAM_BYTES = 2_500_000_000


def _zip_folder(folder: Path, target: Path) -> None:
    """Every file of `folder` into the .zip `target` (stored: weights do not compress),
    written beside it first and renamed, so a half-written zip is never offered."""
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for item in sorted(folder.iterdir()):
            archive.write(item, item.name)
    os.replace(tmp, target)


def _export(spec) -> Path:
    """The ONNX download of `spec`: `slug.onnx`, or `slug.onnx.zip` holding it and its
    `.onnx.data`. Exported into a folder of its own, removed afterwards (the space given
    back); an existing download is reused."""
    from builder.export import export_onnx

    name = slug(spec)
    for done in (OUTPUT_DIR / f"{name}.onnx", OUTPUT_DIR / f"{name}.onnx.zip"):
        if done.exists():
            return done
    folder = Path(tempfile.mkdtemp(prefix=f".{name}-onnx-", dir=OUTPUT_DIR))
    try:
        export_onnx(spec, str(folder / f"{name}.onnx"))
        if [p.name for p in folder.iterdir()] == [f"{name}.onnx"]:  # weights inside
            target = OUTPUT_DIR / f"{name}.onnx"
            os.replace(folder / f"{name}.onnx", target)
        else:  # weights in external data: both files, in one zip
            target = OUTPUT_DIR / f"{name}.onnx.zip"
            _zip_folder(folder, target)
        return target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def onnx(spec_json) -> dict:
    """The model as ONNX, on request (the exporter traces it: seconds for a big one). A model
    whose weights ONNX keeps in a separate .onnx.data file comes as one .zip of both."""
    from builder import guards
    from builder.export import ExportUnavailable
    from builder.memory import release

    spec = parse_spec_json(spec_json)
    try:
        weights = guards.estimate(spec).param_bytes
        if weights > ONNX_MAX_PARAM_BYTES:
            raise SpecError("onnx", f"{views.fmt_bytes(weights)} of weights",
                            f"expected at most {views.fmt_bytes(ONNX_MAX_PARAM_BYTES)} for an "
                            "ONNX download: make the network smaller")
        path = _export(spec)
    except (ExportUnavailable, SpecError) as exc:
        return {"onnx_file": gr.update(visible=False),
                "onnx_message": f"**No ONNX.** {md_text(exc)}"}
    finally:
        release()  # the exporter's copies of the model: give the memory back
    size = views.fmt_bytes(path.stat().st_size)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = " and ".join(f"`{n}`" for n in archive.namelist())
        message = (f"ONNX ready: one .zip of {size} holding {names} (ONNX keeps weights over "
                   "2 GB in a separate file): unzip both into one folder, then load the "
                   ".onnx.")
    else:
        message = f"ONNX ready: {size}."
    return {"onnx_file": gr.update(value=str(path), visible=True), "onnx_message": message}


def wire(page: Page) -> None:
    page.on("spec_json.change", code, "spec_json",
            ["code", "py_file", "json_file", "config_file"], api_name="code", **HEAVY)
    page.on("onnx_button.click", onnx, "spec_json", ["onnx_file", "onnx_message"],
            api_name="onnx", concurrency_limit=1)
