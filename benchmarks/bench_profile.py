"""The profiler against plain timing of the same spec (its overhead), the sum-of-layers
check, and the roofline points of the three forms of one conv2 block (ResNeXt-50's later
conv2 block, 256-d in and out, C=32, d=4, 56x56: layer1.1 of a one-stage, two-block network).

    python benchmarks/bench_profile.py [--device cpu|cuda] [--dtype fp32|bf16] [--batch N]
        [--channels-last] [--preset NAME] [--no-append]

Prints a markdown section and appends it to benchmarks/RESULTS.md (unless --no-append).
Needs torch only (no gradio, no torchinfo): benchmarks/gpu_check.sh runs it on a GPU machine.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def _import():
    """builder's torch-only modules, without builder/__init__ (no gradio, torchinfo)."""
    if "builder" not in sys.modules:
        package = types.ModuleType("builder")
        package.__path__ = [str(ROOT / "builder")]
        sys.modules["builder"] = package
    from builder import roofline, timing
    from builder.spec import PRESETS

    return timing, roofline, PRESETS


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--preset", default="resnext50_32x4d")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    timing, roofline, presets = _import()
    block = presets[args.preset].replace(depths=(2,), image_size=224)
    settings = dict(batch_size=args.batch, device=args.device, dtype=args.dtype,
                    channels_last=args.channels_last, warmup=1, iters=args.iters)
    result = timing.profile(block, forms="abc", **settings)
    when = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"\n## bench_profile: {block.name} (conv2 blocks as a network), "
             f"{args.device.upper()} ({when:%Y-%m-%d %H:%M} UTC)", "",
             f"- Device: {result.device_name}; torch {torch.__version__}, Python "
             f"{platform.python_version()}; batch {args.batch}, {args.dtype}, "
             f"{'channels_last' if args.channels_last else 'NCHW'}, inference; 1 warm-up, "
             f"{args.iters} plain (half before, half after the profiled ones: the drift "
             f"column is how far the halves differ) + {result.iterations} profiled "
             "iterations.",
             f"- Roof: {result.peak_tflops:.3g} TFLOP/s (best of torch.mm and, on the CPU, "
             f"oneDNN's 1x1 conv), {result.bandwidth_gbs:.3g} GB/s (a copy).", "",
             "| form | plain ms | plain drift | profiled ms | overhead | layers ms | other ms "
             "| layers % | op calls | kernels |", "|---|---|---|---|---|---|---|---|---|---|"]
    for form, p in result.forms.items():
        lines.append(f"| ({form}) | {p.plain_ms:.2f} | {100 * p.plain_drift:.0f}% | "
                     f"{p.profiled_wall_ms:.2f} | "
                     f"{100 * p.overhead:+.0f}% | {p.layers_ms:.2f} | {p.other_ms:.2f} | "
                     f"{100 * p.coverage:.1f} | {p.op_calls} | {p.kernels} |")
    lines += ["", "Roofline points of the block's convolutions (the later conv2 block, "
              "layer1.1; forms (a) and (b) summed over their 32 paths per layer):", "",
              "| form | layer | calls | ms | FLOP/byte | TFLOP/s | % of peak |",
              "|---|---|---|---|---|---|---|"]
    for form, p in result.forms.items():
        groups: dict[str, list] = {}
        for r in p.layers:
            if r.name.startswith("layer1.1.") and r.kind in roofline.PLOTTED:
                parts = r.name.split(".")
                key = ".".join("*" if parts[i - 1] == "paths" else part
                               for i, part in enumerate(parts))
                groups.setdefault(key, []).append(r)
        for key, rows in sorted(groups.items(), key=lambda g: -sum(r.self_ms for r in g[1])):
            ms = sum(r.self_ms for r in rows)
            macs = sum(r.macs for r in rows)
            moved = sum(r.bytes for r in rows)
            tflops = 2 * macs / (ms / 1e3) / 1e12 if ms else 0
            lines.append(f"| ({form}) | {key}{' x' + str(len(rows)) if len(rows) > 1 else ''}"
                         f" | {sum(r.calls for r in rows)} | {ms:.3f} | {2 * macs / moved:.3g}"
                         f" | {tflops:.3g} | {100 * tflops / result.peak_tflops:.1f} |")
    lines += [""] + [f"- {n}" for n in result.notes] + [""]
    text = "\n".join(lines)
    print(text)
    if not args.no_append:
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
