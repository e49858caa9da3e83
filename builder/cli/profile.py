"""`python -m builder profile`: where the time goes, per layer, under torch.profiler.

The spec options and `python -m builder time`'s timing options (its argument definitions and
settings_from_args), and: --forms (profile forms (a), (b), (c) with the same weights), --json,
--csv FILE (one row per layer), --roofline FILE.svg|.png, --trace FILE.json (Chrome trace:
Perfetto opens it), --memory (estimated vs measured memory, inference and a training step),
--counters (FLOP counters side by side). --one-block, --cross-check and --cuda-graphs are not
for the profile: refused, exit 2.
"""

from __future__ import annotations

import csv
import json
import os
import sys

HELP = "where the time goes: per-layer self time, roofline, memory and FLOP counters"
TOP = 20  # layers shown in the text table (all of them in --json and --csv)
CSV_COLUMNS = ("form", "name", "kind", "kernel_size", "groups", "calls", "self_ms", "percent",
               "macs", "bytes", "intensity", "tflops")


def add_arguments(p) -> None:
    from . import time

    time.add_arguments(p)  # the timing options, --forms, --json and --csv among them
    p.add_argument("--roofline", metavar="FILE.svg|.png", help="draw the roofline here")
    p.add_argument("--trace", metavar="FILE.json", help="write the Chrome trace here")
    p.add_argument("--memory", action="store_true",
                   help="also measure memory against the guards' estimate")
    p.add_argument("--counters", action="store_true", help="also the FLOP counters table")


def _writable(flag: str, path: str | None, suffixes: tuple[str, ...] = ()) -> None:
    from . import UsageError

    if path is None:
        return
    if suffixes and not path.lower().endswith(suffixes):
        raise UsageError(f"{flag}: {path!r} is not allowed; expected a file name ending in "
                         f"{' or '.join(suffixes)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path) or not os.path.isdir(folder) or not os.access(
            path if os.path.exists(path) else folder, os.W_OK):
        raise UsageError(f"{flag}: cannot write {path!r}")


def run(spec, args) -> int:
    """Profile as the arguments say. A bad setting, an unwritable file or a network too big
    for this device exits 2 with one line; a failed run prints one line and returns 1."""
    from ..timing import TimingSettingError
    from . import UsageError

    for flag, value in (("--one-block", args.one_block is not None),
                        ("--cross-check", args.cross_check), ("--cuda-graphs", args.cuda_graphs)):
        if value:
            raise UsageError(f"{flag}: not for the profile (it profiles the whole network, "
                             "without CUDA graphs); use `python -m builder time`")
    _writable("--csv", args.csv)
    _writable("--roofline", args.roofline, (".svg", ".png"))
    _writable("--trace", args.trace, (".json",))
    try:
        return _run(spec, args)
    except TimingSettingError as exc:
        raise UsageError(str(exc)) from None


def _run(spec, args) -> int:
    from ..registry import FORMS
    from ..timing import TimingError, profile
    from .time import settings_from_args

    settings = settings_from_args(args)
    try:
        result = profile(spec, settings, forms=tuple(FORMS) if args.forms else None)
    except TimingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    data = result.to_dict(with_forms=args.forms)
    if args.memory:
        from ..timing.memory import measure_memory

        data["memory"] = [r.to_dict() for r in measure_memory(
            spec, settings, forms=tuple(FORMS) if args.forms else None)]
    if args.counters:
        from ..flops import flop_counters

        data["counters"] = [r.to_dict() for r in flop_counters(
            result.spec, settings.batch_size)]
    if args.roofline:
        from ..roofline import caption, plot

        data["roofline"] = {"file": plot(result, args.roofline), "note": caption(result)}
    if args.trace:
        result.export_chrome_trace(args.trace)
    if args.csv:
        _write_csv(args.csv, result)
    print(json.dumps(data, indent=2) if args.json else text(result, data))
    return 0


def _write_csv(path: str, result) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for form, p in result.forms.items():
            for layer in p.layers:
                row = layer.to_dict()
                writer.writerow([form] + ["" if row[c] is None else row[c]
                                          for c in CSV_COLUMNS[1:]])


def text(result, data: dict) -> str:
    """The layer table (largest self time first, then the totals), the forms, memory and
    counters."""
    from ..timing import LAYER_COLUMNS

    main = result.main
    s = result.settings
    lines = [f"{main.name}: batch {result.batch_size}, {s['mode']}, {s['dtype']}, on "
             f"{result.device_name}; torch {result.torch_version}; {s['warmup']} warm-up, "
             f"{result.iterations} profiled iterations",
             f"  step {main.total_ms:.2f} ms profiled ({main.plain_ms:.2f} ms plain); layers "
             f"{main.layers_ms:.2f} ms = {100 * main.coverage:.1f}%; "
             f"{main.op_calls} operator calls, {main.kernels} kernels",
             f"  roof: {result.peak_tflops:.3g} TFLOP/s matmul peak, "
             f"{result.bandwidth_gbs:.3g} GB/s copy bandwidth (measured)", ""]
    rows = [LAYER_COLUMNS] + [r.cells() for r in main.layers[:TOP]]
    if len(main.layers) > TOP:
        rows.append([f"... {len(main.layers) - TOP} more (--json, --csv: all)"]
                    + [""] * (len(LAYER_COLUMNS) - 1))
    if main.layers:
        rows.append(main.totals().cells())
    lines += _table(rows)
    if len(result.forms) > 1:
        lines += ["", "Forms: equal in math, not in time"]
        lines += _table([("form", "step ms", "plain ms", "op calls", "kernels", "layers %")] + [
            (f"({f})", f"{p.total_ms:.2f}", f"{p.plain_ms:.2f}", str(p.op_calls),
             str(p.kernels), f"{100 * p.coverage:.1f}") for f, p in result.forms.items()],
            left=1)
    if main.layers:
        from ..timing import breakdown

        headers, kinds = breakdown.table(result)
        lines += ["", "By kind: the share of the step against the share of the multiply-adds"]
        lines += _table([headers] + kinds, left=1)
    if "memory" in data:
        lines += ["", "Memory: the guards' estimate and the measured peak"]
        lines += _table([("form", "mode", "estimated MiB", "measured MiB", "ratio")] + [
            (f"({m['form']})", m["mode"], f"{m['estimated_bytes'] / 2**20:.1f}",
             f"{m['measured_bytes'] / 2**20:.1f}", f"{m['ratio']:.2f}")
            for m in data["memory"]])
    if "counters" in data:
        from ..flops import CounterRow, counters_table

        lines += ["", "FLOP counters", counters_table([CounterRow(**c)
                                                       for c in data["counters"]])]
    if "roofline" in data:
        lines += ["", f"roofline: {data['roofline']['file']}: {data['roofline']['note']}"]
    lines += [""] + [f"note: {n}" for n in result.notes]
    if result.peak_note:
        lines.append(f"note: {result.peak_note}")
    return "\n".join(lines)


def _table(rows, left: int = 2) -> list[str]:
    """Aligned columns: the first `left` of them text (to the left), the rest numbers."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) if i < left else c.rjust(w)
                     for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
           for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out
