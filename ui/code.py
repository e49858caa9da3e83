"""Code: the standalone model source, its .py, .json and config downloads, ONNX on request."""

from __future__ import annotations

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


def onnx(spec_json) -> dict:
    """The model as ONNX, on request (the exporter traces it: seconds for a big one)."""
    from builder.export import ExportUnavailable, export_onnx

    spec = parse_spec_json(spec_json)
    path = OUTPUT_DIR / f"{slug(spec)}.onnx"

    try:
        if not path.exists():
            export_onnx(spec, str(path))
    except (ExportUnavailable, SpecError) as exc:
        return {"onnx_file": gr.update(visible=False),
                "onnx_message": f"**No ONNX.** {md_text(exc)}"}
    return {"onnx_file": gr.update(value=str(path), visible=True),
            "onnx_message": f"ONNX ready: {views.fmt_bytes(path.stat().st_size)}."}


def wire(page: Page) -> None:
    page.on("spec_json.change", code, "spec_json",
            ["code", "py_file", "json_file", "config_file"], api_name="code", **HEAVY)
    page.on("onnx_button.click", onnx, "spec_json", ["onnx_file", "onnx_message"],
            api_name="onnx", concurrency_limit=1)
