"""python -m builder summary: torchinfo's table, the rows with groups, or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from ..spec import ResNeXtSpec
from ..summary import BATCH_RANGE, DEPTH_RANGE
from . import whole_number

HELP = "torchinfo's summary: layers, kernels, output shapes, params, multiply-adds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--depth", type=whole_number("--depth", *DEPTH_RANGE), default=3,
                   help="how deep the rows go: 1 stem, stages, head; 3 each block's layers")
    p.add_argument("--batch", type=whole_number("--batch", *BATCH_RANGE), default=1,
                   help="images per batch (default 1)")
    p.add_argument("--rows", action="store_true",
                   help="print the rows with a groups column instead of torchinfo's table")
    p.add_argument("--json", action="store_true", help="print rows and totals as JSON")


def run(spec: ResNeXtSpec, args) -> int:
    """python -m builder summary: torchinfo's table (or --rows, or --json)."""
    # imported here: `info` and the rest work without torchinfo
    from ..guards import check
    from ..summary import SummaryUnavailable, rows_table, summarize

    check(spec)  # the app's guard (builder.views.summary): refuse before building
    try:
        result = summarize(spec, depth=args.depth, batch_size=args.batch)
    except SummaryUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif args.rows:
        print(rows_table(result))
        print(f"\ntotal params {result.total_params:,}   multiply-adds {result.macs:,}")
    else:
        print(result.table)
    return 0
