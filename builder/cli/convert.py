"""python -m builder convert --weights FILE --form a|b|c -o OUT: the same function, another form."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..registry import FORMS
from ..spec import ResNeXtSpec
from ..weights import save_safetensors
from . import UsageError
from ._weights import add_weights_option, spec_and_weights

HELP = "a checkpoint in another block form (weights and BN statistics), as .safetensors or .pth"
SUFFIXES = (".safetensors", ".pth", ".pt")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_weights_option(p, "the checkpoint to convert")
    p.add_argument("-o", "--output", metavar="OUT.safetensors",
                   help="write here (.safetensors, or .pth/.pt through torch.save)")


def run(spec: ResNeXtSpec, args) -> int:
    if not args.weights or not args.form or not args.output:
        raise UsageError("convert: give --weights FILE, --form (one of "
                         f"{', '.join(FORMS)}) and -o OUT.safetensors")
    suffix = Path(args.output).suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"-o: {suffix or '(no suffix)'!r} is not allowed; expected one of "
                         f"{', '.join(SUFFIXES)}")
    spec, state, label = spec_and_weights(spec, args)
    try:
        if suffix == ".safetensors":
            save_safetensors(state, args.output, {"spec": spec.to_json(indent=None),
                                                  "weights": label})
        else:
            torch.save(state, args.output)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"-o: cannot write {args.output!r}: {reason}") from None
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size:,} bytes): {spec.name}, form ({spec.form}), {label}")
    return 0
