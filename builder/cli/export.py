"""python -m builder export: the standalone source, the spec as JSON, or ONNX."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..export import ExportUnavailable, export_json, export_onnx, export_source
from ..spec import ResNeXtSpec

HELP = "standalone model source (.py, needs only torch), the spec (.json) or ONNX"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write here; without -o, py and json go to stdout")
    p.add_argument("--format", choices=("py", "json", "onnx"),
                   help="py: standalone source needing only torch; json: the spec, for "
                        "--config; onnx: needs -o. Default: from the suffix of -o, else py")


def output_format(args) -> str:
    """--format, or else the suffix of -o (.json, .onnx), or else py."""
    if args.format:
        return args.format
    suffix = Path(args.output).suffix.lower() if args.output else ""
    return {".json": "json", ".onnx": "onnx"}.get(suffix, "py")


def run(spec: ResNeXtSpec, args) -> int:
    """python -m builder export: write the source, the JSON or the ONNX file."""
    fmt = output_format(args)
    if fmt == "onnx":
        if not args.output:
            print("error: --format onnx writes a file: give -o FILE.onnx", file=sys.stderr)
            return 2
        try:
            path = export_onnx(spec, args.output)
        except ExportUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:  # -o cannot be written (a SpecError propagates: exit 2)
            reason = exc.strerror or str(exc)
            print(f"error: -o: cannot write {args.output!r}: {reason}", file=sys.stderr)
            return 2
        print(f"wrote {path} ({path.stat().st_size:,} bytes): {spec.name}, fresh weights")
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
    print(f"wrote {args.output}: {spec.name}, form ({spec.form}), {fmt}")
    return 0
