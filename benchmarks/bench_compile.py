"""torch.compile's first call (compiling, then one call) for each form, on the CPU.

    .venv/bin/python benchmarks/bench_compile.py [--preset resnext50_32x4d] [--no-append]

Each form is compiled in a fresh process with an empty Inductor cache of its own (a cache left
by an earlier compile of the same graph makes the first call a few seconds), batch 2 at 64x64,
inference. The first call compiles; the second is one call of the compiled code. The
timing estimate's compile model (builder/timing/estimate.py: a fixed part plus a part per
module call) is fitted to these figures; the table shows what it predicts beside them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.bench_summary import cpu_model, publish  # noqa: E402
from builder import PRESETS  # noqa: E402
from builder.timing.estimate import _compile_seconds, _module_calls  # noqa: E402

ONE = """
import json, time, torch
from builder import PRESETS, build_model
model = build_model(PRESETS[{name!r}].replace(form={form!r})).eval()
x = torch.randn(2, 3, 64, 64)
compiled = torch.compile(model)
with torch.no_grad():
    start = time.perf_counter(); compiled(x); first = time.perf_counter() - start
    start = time.perf_counter(); compiled(x); second = time.perf_counter() - start
print(json.dumps({{"first": first, "second": second}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="resnext50_32x4d")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()[0]
    spec, lines = PRESETS[args.preset], []
    for form in "cba":
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            out = subprocess.run([sys.executable, "-c", ONE.format(name=args.preset, form=form)],
                                 cwd=ROOT, env=env, check=True, capture_output=True,
                                 text=True).stdout
        got = json.loads(out.strip().splitlines()[-1])
        calls = _module_calls(spec, form)
        lines.append(f"| ({form}) | {calls:,} | {got['first']:.1f} | {got['second']:.3f} | "
                     f"{_compile_seconds('cpu', calls):.0f} |")
        print(lines[-1], flush=True)
    text = "\n".join([
        "",
        f"## torch.compile's first call, per form ({started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"`benchmarks/bench_compile.py --preset {args.preset}`. CPU: {cpu_model()}, "
        f"{os.cpu_count()} cores, load average {load_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end; Python {platform.python_version()}, torch "
        f"{torch.__version__}. {spec.name}, batch 2 at 64x64, inference, each form in a fresh "
        "process. Seconds.",
        "",
        "| form | module calls | first call: compiling + one call (s) | second call (s) | "
        "estimate's compile time (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
        *lines,
        "",
    ])
    publish(text, append=not args.no_append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
