"""Wall time of builder.summarize() (torchinfo on the meta device), and append it to RESULTS.md.

    .venv/bin/python benchmarks/bench_summary.py [--repeats 5] [--no-append]

For each model: the first call in a fresh Python process (after the imports: it includes
torch's one-time set-up of the meta device), then the median and min of --repeats calls in one
process after a burn-in call. The summary is a pure function of the spec: no cache is involved.
The machine is shared, so the load average at the start is printed with the table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torchinfo  # noqa: E402

from builder import PRESETS, network_counts  # noqa: E402
from builder.summary import summarize  # noqa: E402

MODELS = ("resnext50_32x4d", "resnext101_64x4d")

COLD = """
import time
from builder import PRESETS
from builder.summary import summarize
start = time.perf_counter()
summarize(PRESETS[{name!r}])
print(time.perf_counter() - start)
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cold_seconds(name: str) -> float:
    """The first summarize() in a fresh interpreter, imports excluded."""
    out = subprocess.run([sys.executable, "-c", COLD.format(name=name)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def warm_seconds(name: str, repeats: int) -> list[float]:
    spec = PRESETS[name]
    summarize(spec)  # burn-in
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        summarize(spec)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for name in MODELS:
        spec = PRESETS[name]
        result = summarize(spec)
        counts = network_counts(spec)
        assert (result.total_params, result.macs) == (counts.params, counts.macs)
        cold = cold_seconds(name)
        warm = warm_seconds(name, args.repeats)
        rows.append(f"| {name} at {spec.image_size} | {len(result.rows)} | "
                    f"{result.total_params:,} | {result.macs / 1e9:.2f} G | {cold:.2f} | "
                    f"{statistics.median(warm):.3f} | {min(warm):.3f} |")

    today = datetime.date.today().isoformat()
    text = "\n".join([
        "",
        f"## summarize(): torchinfo on the meta device ({today})",
        "",
        f"`benchmarks/bench_summary.py`, CPU: {cpu_model()}, {os.cpu_count()} cores "
        f"(torch threads {torch.get_num_threads()}), load average {load:.1f} at the start; "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchinfo {torchinfo.__version__}. Depth 3, batch 1. Seconds of wall time: the "
        f"first call in a fresh process (imports excluded), then the median and min of "
        f"{args.repeats} calls after a burn-in. Totals equal builder.complexity's counts. "
        "The first call is slower once per process: torch's meta kernels of the residual add "
        "and the convolution are Python references, whose first call imports "
        "`torch._dynamo` (any forward on the meta device pays it once).",
        "",
        "| model | rows | params | multiply-adds | first call (s) | median (s) | min (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ])
    print(text)
    if not args.no_append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write(text)  # one write: others append to the same file
        print(f"appended to {ROOT / 'benchmarks' / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
