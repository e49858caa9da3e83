"""Wall time of builder.summarize() (torchinfo on the meta device), and append it to RESULTS.md.

    .venv/bin/python benchmarks/bench_summary.py [--cold 5] [--repeats 7] [--no-append]

For each model, three cold figures, each from --cold fresh Python processes (median and max):
- first call: the first summarize() in a fresh process, imports excluded. It used to pay
  torch's one-time set-up of its Python meta kernels (sympy and torch._dynamo imported by the
  first of them); builder.summary now computes those layers' shapes itself (`_ShapeOnly`);
- imports + first call: the same process timed from before `import builder` (torch, builder,
  torchinfo) to the end of that first call; the interpreter's own start-up is not in it;
- command: `python -m builder summary --preset NAME` as a user runs it, from the parent
  (interpreter start-up, imports, the summary and printing torchinfo's table).
- first call, torch's meta kernels: the first call again, in fresh processes with
  `_ShapeOnly` switched off, for a before/after on the same machine at the same time.
Then the warm median and min of --repeats calls in this process after a burn-in call. Every
cold process also reports whether torch._dynamo or sympy got imported. The summary is a pure
function of the spec: no cache is involved. The machine may be shared: the load average at the
start and the end is printed with the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
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
TARGET_S = 1.0  # issue 5: "well under a second on 2 CPU cores" for resnext101_64x4d at 224

COLD = """
import time
start = time.perf_counter()
import sys
from builder import PRESETS
from builder.summary import summarize
import torchinfo
if {torch_kernels}:  # for comparison: every layer through torch's meta kernels
    import contextlib
    import builder.summary
    builder.summary._ShapeOnly = contextlib.nullcontext
imported = time.perf_counter()
summarize(PRESETS[{name!r}])
done = time.perf_counter()
import json
print(json.dumps({{"first": done - imported, "with_imports": done - start,
                  "slow_path": sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules)}}))
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def publish(text: str, append: bool = True) -> None:
    """Print a benchmark's section and append it to benchmarks/RESULTS.md (one write: other
    benchmarks append to the same file)."""
    print(text)
    if append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write(text)
        print(f"appended to {ROOT / 'benchmarks' / 'RESULTS.md'}")


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def cold_process(name: str, torch_kernels: bool = False) -> dict:
    """The first summarize() in a fresh interpreter: imports excluded and included."""
    code = COLD.format(name=name, torch_kernels=torch_kernels)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def command_seconds(name: str) -> float:
    """`python -m builder summary --preset NAME`, start to exit, output discarded."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "builder", "summary", "--preset", name], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def warm_seconds(name: str, repeats: int) -> list[float]:
    spec = PRESETS[name]
    summarize(spec)  # burn-in
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        summarize(spec)
        times.append(time.perf_counter() - start)
    return times


def _pair(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} / {max(values):.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=5, help="fresh processes per cold figure")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()

    load_start = load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    rows, verdicts = [], []
    for name in MODELS:
        spec = PRESETS[name]
        result = summarize(spec)
        counts = network_counts(spec)
        assert (result.total_params, result.macs) == (counts.params, counts.macs)
        cold = [cold_process(name) for _ in range(args.cold)]
        before = [cold_process(name, torch_kernels=True)["first"] for _ in range(args.cold)]
        commands = [command_seconds(name) for _ in range(args.cold)]
        warm = warm_seconds(name, args.repeats)
        first = [c["first"] for c in cold]
        with_imports = [c["with_imports"] for c in cold]
        slow = sorted({m for c in cold for m in c["slow_path"]}) or ["none"]  # ours only
        rows.append(f"| {name} at {spec.image_size} | {len(result.rows)} | "
                    f"{result.total_params:,} | {result.macs / 1e9:.2f} G | {_pair(first)} | "
                    f"{_pair(with_imports)} | {_pair(commands)} | {_pair(before)} | "
                    f"{statistics.median(warm):.3f} / {min(warm):.3f} | {', '.join(slow)} |")
        if name == "resnext101_64x4d":
            for label, values in (("first call, imports excluded", first),
                                  ("imports + first call", with_imports),
                                  ("the whole `python -m builder summary` command", commands)):
                worst = max(values)
                verdicts.append(f"- {label}: median {statistics.median(values):.2f} s, worst "
                                f"{worst:.2f} s of {len(values)}: "
                                f"{'under' if worst < TARGET_S else 'NOT under'} {TARGET_S:.0f} s")
    load_end = load_average()

    text = "\n".join([
        "",
        f"## summarize(), cold and warm: torchinfo on the meta device "
        f"({started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"`benchmarks/bench_summary.py --cold {args.cold} --repeats {args.repeats}`. CPU: "
        f"{cpu_model()}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()}), "
        f"load average {load_start:.2f} at the start and {load_end:.2f} at the end; "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchinfo {torchinfo.__version__}. Depth 3, batch 1. Seconds of wall time. Cold "
        f"figures are median / max over {args.cold} fresh processes each: the first "
        "summarize() with imports excluded; the same process timed from before `import "
        "builder` to the end of that call (imports of torch, builder, torchinfo included, "
        "the interpreter's start-up not); and the whole `python -m builder summary --preset "
        "NAME` command from the parent (start-up and printing the table included). Warm: "
        f"median / min of {args.repeats} calls in one process after a burn-in. Totals equal "
        "builder.complexity's counts. `slow path` lists which of torch._dynamo and sympy any "
        "cold process imported: builder.summary now computes the output shapes of the "
        "convolutions, BNs, pools, adds, cat and the classifier itself (`_ShapeOnly`) rather "
        "than through torch's meta kernels, whose first call imported both (about 1 s idle, "
        "5 s under load: the earlier section's first call). For comparison, `first call, "
        "torch's meta kernels` is the same first call in fresh processes with `_ShapeOnly` "
        "switched off (every layer through torch's meta kernels, BN included), in this run.",
        "",
        "| model | rows | params | multiply-adds | first call (s) | imports + first call (s) "
        "| command (s) | first call, torch's meta kernels (s) | warm median / min (s) "
        "| slow path |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *rows,
        "",
        f"Issue 5's target for resnext101_64x4d at 224 (well under {TARGET_S:.0f} s on 2 "
        "cores), worst cold process:",
        *verdicts,
        "",
    ])
    publish(text, append=not args.no_append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
