"""The Summary of forms (a) and (b): one path walked per block against every path walked.

    .venv/bin/python benchmarks/bench_summary_forms.py [--repeats 3] [--no-append]

builder.summary walks forms (a) and (b) with one path per block and lists the other C - 1
from it (`_one_path_model`, `_all_paths`). The reference is what it did before: build every
path on the meta device and let torchinfo walk them all. Both give the same table, rows and
totals (checked here on every call, and in tests/test_summary.py). The two are interleaved
in one process, round by round, so that both see the same moments of a shared machine; each
figure is the wall time of what the Summary view waits for: summarize() at depth 3, batch 1,
then the rows as text.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torchinfo  # noqa: E402

from benchmarks.bench_summary import cpu_model, publish  # noqa: E402
from builder import PRESETS, build_model  # noqa: E402
from builder import summary as summary_module  # noqa: E402
from builder.summary import rows_table, summarize  # noqa: E402

CASES = (("resnext101_64x4d", "a"), ("resnext101_64x4d", "b"), ("resnext50_32x4d", "a"),
         ("resnext101_64x4d", "c"))
DEPTH = 3


def every_path(spec) -> summary_module.SummaryResult:
    """The reference: every path built and walked by torchinfo (the code before)."""
    model = build_model(spec, device="meta")
    stats = summary_module._statistics(torchinfo, model, spec, DEPTH, 1)
    rows = [summary_module._row(info, name, DEPTH)
            for info, name in summary_module._named(stats.summary_list) if info.depth <= DEPTH]
    return summary_module.SummaryResult(
        spec=spec, depth=DEPTH, batch_size=1, rows=rows, total_params=stats.total_params,
        trainable_params=stats.trainable_params, macs=stats.total_mult_adds,
        input_bytes=stats.total_input, forward_backward_bytes=stats.total_output_bytes,
        params_bytes=stats.total_param_bytes, table=str(stats))


def timed(fn, spec) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(spec)
    rows_table(result)
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per case")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()[0]
    lines = []
    for name, form in CASES:
        spec = PRESETS[name].replace(form=form)
        summarize(spec)  # burn-in: imports, first calls
        ours, reference = [], []
        for _ in range(args.repeats):
            t_ours, r_ours = timed(lambda s: summarize(s, DEPTH), spec)
            t_ref, r_ref = timed(every_path, spec)
            assert (r_ours.rows, r_ours.table, r_ours.total_params, r_ours.macs) == (
                r_ref.rows, r_ref.table, r_ref.total_params, r_ref.macs), (name, form)
            ours.append(t_ours)
            reference.append(t_ref)
        a, b = statistics.median(ours), statistics.median(reference)
        lines.append(f"| {name} | ({form}) | {len(r_ours.rows)} | {a:.3f} ({min(ours):.3f}) | "
                     f"{b:.3f} ({min(reference):.3f}) | {b / a:.1f}x |")
    text = "\n".join([
        "",
        f"## The Summary of forms (a) and (b): one path walked per block "
        f"({started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"`benchmarks/bench_summary_forms.py --repeats {args.repeats}`. CPU: "
        f"{cpu_model()}, {os.cpu_count()} cores, load average "
        f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; Python "
        f"{platform.python_version()}, torch {torch.__version__}, torchinfo "
        f"{torchinfo.__version__}. summarize() at depth 3, batch 1, then the rows as text, in "
        "seconds: median (min) of the rounds, the two interleaved in one process. Every round "
        "checked: the same rows, table and totals. Form (c) walks its model as before (no "
        "paths): it is there for scale.",
        "",
        "| model | form | rows | one path walked (s) | every path walked (s) | speed-up |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *lines,
        "",
    ])
    publish(text, append=not args.no_append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
