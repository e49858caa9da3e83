"""python -m builder inspect --weights FILE: the architecture a checkpoint holds."""

from __future__ import annotations

import argparse
import json

from ..infer import infer_spec
from ..spec import ResNeXtSpec
from ..weights import WeightsError, read_shapes
from . import UsageError
from ._weights import add_weights_option

HELP = "the spec a checkpoint holds, from its key names and shapes (headers only)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_weights_option(p, "the checkpoint to inspect")
    p.add_argument("--json", action="store_true",
                   help="the spec's keys plus preset (a name or null), assumed and notes")


def run(spec: ResNeXtSpec, args) -> int:
    if not args.weights:
        raise UsageError("inspect: give --weights FILE")
    try:  # safetensors: the header only; .pth: memory-mapped, tensors stay on disk
        inferred = infer_spec(read_shapes(args.weights), source=args.weights)
    except WeightsError as exc:
        raise UsageError(f"--weights: {exc}") from None
    if args.json:
        print(json.dumps(inferred.to_dict(), indent=2))
        return 0
    found = inferred.spec
    print(f"{args.weights}: {inferred.notes[0]}")
    told = {k: v for k, v in found.to_dict().items() if k not in inferred.assumed}
    print("  " + ", ".join(f"{k} {','.join(map(str, v)) if isinstance(v, list) else v}"
                           for k, v in told.items()))
    print("assumed (not told by the weights):")
    for note in inferred.notes[1:]:
        print(f"  {note}")
    return 0
