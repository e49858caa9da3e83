"""python -m builder export: the standalone source, the spec as JSON, ONNX, or the weights
(safetensors, a timm folder, torch.export's .pt2), loaded (--weights) or random."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..export import ExportUnavailable, export_json, export_onnx, export_source
from ..export_weights import TimmUnsupported, export_pt2, export_safetensors, export_timm
from ..spec import ResNeXtSpec
from ..weights import WeightsError
from . import UsageError
from ._weights import add_weights_option, spec_and_weights

HELP = ("standalone model source (.py, needs only torch), the spec (.json), ONNX, or weights: "
        "safetensors, a timm folder, torch.export .pt2")
FILE_FORMATS = ("onnx", "safetensors", "timm", "pt2")  # these need -o
SUFFIX_FORMATS = {".json": "json", ".onnx": "onnx", ".safetensors": "safetensors",
                  ".pt2": "pt2"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write here; without -o, py and json go to stdout; timm: a folder")
    p.add_argument("--format", choices=("py", "json") + FILE_FORMATS,
                   help="py: standalone source needing only torch; json: the spec, for "
                        "--config; onnx, safetensors (torchvision's keys), timm (a folder: "
                        "config.json + model.safetensors), pt2 (torch.export): need -o. "
                        "Default: from the suffix of -o, else py")
    add_weights_option(p, "export these weights (default: random ones)")


def output_format(args) -> str:
    """--format, or else the suffix of -o (.json, .onnx, .safetensors, .pt2), or else py."""
    if args.format:
        return args.format
    suffix = Path(args.output).suffix.lower() if args.output else ""
    return SUFFIX_FORMATS.get(suffix, "py")


def _write_file(fmt: str, spec: ResNeXtSpec, state, source, output) -> Path:
    if fmt == "onnx":
        return export_onnx(spec, output, state_dict=state)
    writer = {"safetensors": export_safetensors, "timm": export_timm, "pt2": export_pt2}[fmt]
    return writer(spec, output, state, source)


def _size(path: Path) -> str:
    files = [f for f in path.iterdir() if f.is_file()] if path.is_dir() else [path]
    return f"{sum(f.stat().st_size for f in files):,} bytes"


def run(spec: ResNeXtSpec, args) -> int:
    """python -m builder export: write the source, the JSON, ONNX or the weights."""
    fmt = output_format(args)
    spec, state, label = spec_and_weights(spec, args)
    if fmt in FILE_FORMATS:
        if not args.output:
            target = "DIR" if fmt == "timm" else f"FILE.{fmt}"
            print(f"error: --format {fmt} writes a file: give -o {target}", file=sys.stderr)
            return 2
        try:
            path = _write_file(fmt, spec, state, args.weights, args.output)
        except ExportUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (TimmUnsupported, WeightsError) as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:  # -o cannot be written (a SpecError propagates: exit 2)
            reason = exc.strerror or str(exc)
            print(f"error: -o: cannot write {args.output!r}: {reason}", file=sys.stderr)
            return 2
        words = "fresh weights" if state is None else label
        print(f"wrote {path} ({_size(path)}): {spec.name}, form ({spec.form}), {fmt}, {words}")
        return 0
    text = export_source(spec) if fmt == "py" else export_json(spec)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"error: -o: cannot write {args.output!r}: {reason}", file=sys.stderr)
        return 2
    carried = ("" if state is None else f"; the {label} are not in a .{fmt}: "
               "load them with load_weights(path)" if fmt == "py" else "")
    print(f"wrote {args.output}: {spec.name}, form ({spec.form}), {fmt}{carried}")
    return 0
