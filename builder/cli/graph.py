"""python -m builder graph: the block or the network drawn with Graphviz."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..spec import ResNeXtSpec
from . import UsageError

HELP = "draw the block or the network with Graphviz: -o FILE.svg, FILE.png or FILE.dot"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--view", choices=("block", "network"), default="block")
    p.add_argument("--stage", type=int, default=None,
                   help="block view: 0-based stage, 0 = conv2 (default 0)")
    p.add_argument("--block-index", type=int, default=None,
                   help="block view: 0-based block in the stage (default 0, the first, which "
                        "strides and projects)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="format from the suffix: .svg, .png, .dot (.gv); without -o, the DOT "
                        "source goes to stdout")
SUFFIXES = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}


def run(spec: ResNeXtSpec, args) -> int:
    """`python -m builder graph --view block|network [--stage N] [-o FILE]`: the format comes
    from FILE's suffix; without -o, the DOT source goes to stdout."""
    # imported here: `info` and the rest work without the graphviz package
    from ..graph import GraphvizError, draw, render

    output = getattr(args, "output", None)
    fmt = "dot"
    if output:
        suffix = Path(output).suffix.lower()
        if suffix not in SUFFIXES:
            raise UsageError(f"-o: {output!r} has no known suffix; expected "
                             f"{', '.join(SUFFIXES)}")
        fmt = SUFFIXES[suffix]
    stage, block_index = getattr(args, "stage", None), getattr(args, "block_index", None)
    if args.view == "network":
        # The network view draws every stage and block; a stage or block asked for would be
        # ignored
        for flag, value in (("--stage", stage), ("--block-index", block_index)):
            if value is not None:
                raise UsageError(f"{flag}: only for --view block; the network view draws "
                                 "every stage")
    graph = draw(spec, args.view, 0 if stage is None else stage,
                 0 if block_index is None else block_index)
    try:
        data = render(graph, fmt)
    except GraphvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not output:
        sys.stdout.write(data.decode("utf-8"))
        return 0
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise UsageError(f"-o: cannot write {output!r}: {exc.strerror}") from None
    print(f"wrote {output} ({fmt.upper()}, {len(data):,} bytes)")
    return 0

