"""Load test of the running app (issue 7, item 4): many gradio_client sessions at once.

    .venv/bin/python benchmarks/load_app.py                    # 20 sessions x 15 builds, 4 timers
    .venv/bin/python benchmarks/load_app.py --provers 2        # + 2 clients sending proofs
    .venv/bin/python benchmarks/load_app.py --append           # + a section in RESULTS.md
    .venv/bin/python benchmarks/load_app.py --sessions 30 --builds 20 --timers 6 --seed 7

What it does:
  * launches the app on 127.0.0.1 on a free port (GRADIO_SERVER_PORT) and waits for its page;
  * `--sessions` threads, each with its own gradio_client.Client, each calling /build
    `--builds` times with random valid specs (seeded: a preset plus random overrides of
    cardinality, width_per_group, depths, form, block, stem, image_size; kept modest with
    builder.guards so that each builds on the meta device in well under a second);
  * at the same time `--timers` threads, each with its own Client, sending /time requests at
    once (released together by a barrier, `--rounds` times): CPU, a tiny spec, batch 1 or 2.
    /time has no iteration-count input: the app times its default warm-up + 10 iterations;
  * and `--provers` threads, each with its own Client, sending /equivalence requests (the
    proof on the whole network of a tiny spec, eval and train; `--rounds` each), which take
    the same one-at-a-time device queue as /time;
  * counts requests and failures (any exception, or a result that is not the right answer:
    /build params, MACs and name against builder.complexity, /time not "Ran on ..."), and
    reports p50/p95/max client-side latency per endpoint (submit to result: for /time this
    includes waiting in the app's one-at-a-time device queue);
  * checks that timing runs were serialised. /time's result carries no server-side start or
    end, so by default the app is launched through a small wrapper (`python -c ...` that
    wraps builder.timing.time_model / time_forms to log time.monotonic() at entry and exit,
    then runs app.py with runpy as __main__; nothing else changes) and the check is on those
    server-side intervals: none may overlap another. The client-side view is printed as well
    (from when each Job is first seen PROCESSING to its result; gradio_client polls its
    message queue every 50 ms, so it is coarse and only reported). `--plain` launches
    `python app.py` unwrapped; the check is then not observable and says so;
  * reads the app process's resident memory (VmRSS in /proc/PID/status) after the first 30
    builds and after 300 builds (or after the last build, if fewer), and every 30 builds in
    between: after 300 must be within 15% of after 30; and once more after everything,
    timings and proofs included (reported, not judged: a timing's model is freed, but the
    allocator may keep its pages).
The verdict is PASS only when all of: zero failures, serialised timing, memory within 15%.
With --append the table goes to benchmarks/RESULTS.md (device, versions, date, load average
before and after). Exit status 0 on PASS, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT), str(ROOT / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
for _var in ("NO_PROXY", "no_proxy"):
    _hosts = os.environ.get(_var, "")
    if "127.0.0.1" not in _hosts:
        os.environ[_var] = ",".join(h for h in ("localhost,127.0.0.1", _hosts) if h)

from builder import PRESETS, ResNeXtSpec, count_macs, count_params, guards  # noqa: E402
from builder.spec import SpecError  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
MEMORY_FIRST, MEMORY_LAST, MEMORY_TOLERANCE = 30, 300, 0.15
# "modest": what /build (torchinfo on the meta device, the block SVG, the source) does in well
# under a second on 2 cores; the guard's own estimate, before anything is built.
MAX_MODULES = 1500
MAX_PARAMS = 120_000_000
MAX_MACS = 20 * 10**9
TIMING_SPEC = ResNeXtSpec(cardinality=2, width_per_group=4, depths=(1,), stem="cifar",
                          num_classes=10, image_size=16)
PROOF_SPEC = TIMING_SPEC.replace(cardinality=4, depths=(1, 1))

# Runs inside the app's process (see the module docstring): server-side timing intervals.
INSTRUMENT = r"""
import functools, json, os, runpy, sys, threading, time
import builder.timing as timing
log = open(os.environ["LOAD_TIMING_LOG"], "a", buffering=1)
lock, local = threading.Lock(), threading.local()
def wrap(fn):
    @functools.wraps(fn)
    def logged(*args, **kwargs):
        depth = getattr(local, "depth", 0)
        local.depth, start, ok = depth + 1, time.monotonic(), False
        try:
            result = fn(*args, **kwargs)
            ok = True
            return result
        finally:
            local.depth = depth
            if depth == 0:
                with lock:
                    log.write(json.dumps({"fn": fn.__name__, "start": start,
                                          "end": time.monotonic(), "ok": ok,
                                          "thread": threading.get_ident()}) + "\n")
    return logged
timing.time_model = wrap(timing.time_model)
timing.time_forms = wrap(timing.time_forms)
sys.argv = ["app.py", *sys.argv[1:]]
runpy.run_path("app.py", run_name="__main__")
"""


# -- the app process -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    process: subprocess.Popen
    url: str
    timing_log: Path | None  # server-side timing intervals (None: launched --plain)
    output: object  # the app's stdout and stderr (a temporary file)

    @property
    def pid(self) -> int:
        return self.process.pid

    def timing_intervals(self) -> list[dict]:
        if self.timing_log is None or not self.timing_log.exists():
            return []
        return [json.loads(line) for line in self.timing_log.read_text().splitlines() if line]

    def log_tail(self, chars: int = 4000) -> str:
        self.output.seek(0)
        return self.output.read().decode(errors="replace")[-chars:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.timing_log is not None:
            self.timing_log.unlink(missing_ok=True)


def launch(port: int | None = None, instrument: bool = True, timeout: float = 240.0) -> App:
    """The app on 127.0.0.1:PORT (GRADIO_SERVER_PORT), returned once its page answers."""
    port = port or free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port)}
    timing_log = None
    if instrument:
        fd, name = tempfile.mkstemp(prefix="load-timing-", suffix=".jsonl")
        os.close(fd)
        timing_log = Path(name)
        env["LOAD_TIMING_LOG"] = name
        argv = [sys.executable, "-c", INSTRUMENT]
    else:
        argv = [sys.executable, "app.py"]
    from test_app import launch as launch_app  # tests/: the suite's own launcher

    output = tempfile.TemporaryFile()  # a pipe nobody reads would block the app once full
    try:
        process = launch_app(port, timeout, argv=argv, env=env, output=output)
    except RuntimeError:
        if timing_log is not None:
            timing_log.unlink(missing_ok=True)
        raise
    return App(process, f"http://127.0.0.1:{port}/", timing_log, output)


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` (VmRSS in /proc/PID/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the requests --------------------------------------------------------------------------

def random_config(rng: random.Random) -> tuple[dict, ResNeXtSpec]:
    """A random valid config ({"preset": ..., overrides}) and its spec, kept modest."""
    while True:
        config: dict = {"preset": rng.choice(sorted(PRESETS))}
        if rng.random() < 0.6:
            config["cardinality"] = rng.choice([1, 2, 3, 4, 8, 16, 32, 64])
        if rng.random() < 0.6:
            config["width_per_group"] = rng.choice([1, 2, 4, 6, 8, 16, 24, 32, 64])
        if rng.random() < 0.5:
            config["depths"] = [rng.randint(1, 4) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.6:
            config["form"] = rng.choice("abc")
        if rng.random() < 0.3:
            config["block"] = rng.choice(["bottleneck", "basic"])
        if rng.random() < 0.3:
            config["stem"] = rng.choice(["imagenet", "cifar"])
        if rng.random() < 0.5:
            config["image_size"] = rng.choice([16, 32, 64, 96, 128, 160, 224])
        try:
            spec = ResNeXtSpec.from_dict(config)
            estimate = guards.check(spec)
        except SpecError:
            continue
        if (estimate.modules <= MAX_MODULES and estimate.params <= MAX_PARAMS
                and estimate.macs <= MAX_MACS):
            return config, spec


def timing_args(spec: ResNeXtSpec, batch: int) -> list:
    """/time's inputs: spec_json, device, batch_size, image_size, dtype, mode, channels_last,
    compile, scope, forms, stage, confirmed, last_times (the results State is not an input)."""
    return [spec.to_json(), "cpu", batch, None, "fp32", "inference", False, False, "network",
            False, 0, False, "{}"]


def check_build(out, spec: ResNeXtSpec) -> str | None:
    """Why /build's answer is wrong for `spec`, or None."""
    if not isinstance(out, dict):
        return f"not a dict: {type(out).__name__}"
    expected = {"name": spec.name, "params": count_params(spec), "macs": count_macs(spec),
                "spec": spec.to_dict()}
    wrong = [f"{k}={out.get(k)!r} (expected {v!r})" for k, v in expected.items()
             if out.get(k) != v]
    if not out.get("block_svg", "").lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE")):
        wrong.append("block_svg is not an SVG")
    if not out.get("summary_rows") or "class " not in out.get("source", ""):
        wrong.append("no summary rows or no source")
    return "; ".join(wrong) or None


def check_time(out, spec: ResNeXtSpec, batch: int) -> str | None:
    """Why /time's answer is not a finished CPU run of `spec` at `batch`, or None."""
    try:
        message, table = out[0], out[1]
        row = table["data"][0]
    except (TypeError, KeyError, IndexError) as exc:
        return f"unexpected result shape ({exc!r}): {str(out)[:300]}"
    if not str(message).startswith("Ran on **CPU"):
        return f"message: {str(message)[:300]}"
    want = f"batch {batch}, {spec.image_size}×{spec.image_size}, inference, fp32, eager"
    if row[1] != f"{spec.name} form ({spec.form})" or not row[9].startswith(want):
        return f"row: {row}"
    return None


def proof_args(spec: ResNeXtSpec) -> list:
    """/equivalence's inputs: spec_json, scope, stage, batch, train too, confirmed."""
    return [spec.to_json(), "network", 0, 1, True, False]


def check_proof(out, spec: ResNeXtSpec) -> str | None:
    """Why /equivalence's answer is not "the same function" for `spec`, or None."""
    try:
        message, rows = out[0], out[1]["data"]
    except (TypeError, KeyError, IndexError) as exc:
        return f"unexpected result shape ({exc!r}): {str(out)[:300]}"
    if not str(message).startswith("**Forms (a), (b) and (c) compute the same function**"):
        return f"message: {str(message)[:300]}"
    if len(rows) != 8 or any(row[-1] != "yes" for row in rows):
        return f"rows: {rows}"
    return None


@dataclass
class Call:
    endpoint: str
    worker: str
    seconds: float  # client-side: submit to result
    error: str | None = None
    spec: ResNeXtSpec | None = None
    params: int | None = None  # /build's answer
    processing: tuple[float, float] | None = None  # /time: client-side PROCESSING..done
    contended: bool = False  # /time: the app marked the run contended by other work


@dataclass
class Load:
    sessions: int
    builds: int
    timers: int
    rounds: int
    seed: int
    calls: list[Call] = field(default_factory=list)
    rss: list[tuple[int, int]] = field(default_factory=list)  # (builds done, VmRSS KiB)
    server_intervals: list[dict] = field(default_factory=list)
    instrumented: bool = True
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    done_builds: int = 0
    provers: int = 0
    final_rss: int | None = None  # VmRSS KiB after everything, timings and proofs included

    @property
    def failures(self) -> list[Call]:
        return [c for c in self.calls if c.error is not None]

    def of(self, endpoint: str) -> list[Call]:
        return [c for c in self.calls if c.endpoint == endpoint]

    def record(self, call: Call, pid: int) -> None:
        with self.lock:
            self.calls.append(call)
            if call.endpoint != "/build":
                return
            self.done_builds += 1
            n = self.done_builds
            if n % MEMORY_FIRST == 0 or n == self.sessions * self.builds:
                self.rss.append((n, rss_kib(pid)))

    # -- verdicts --
    def overlaps(self, intervals: list[tuple[float, float]]) -> list[tuple[int, int, float]]:
        """(i, j, seconds) for every pair of intervals that overlap."""
        out = []
        for i, (a0, a1) in enumerate(intervals):
            for j in range(i + 1, len(intervals)):
                b0, b1 = intervals[j]
                overlap = min(a1, b1) - max(a0, b0)
                if overlap > 0:
                    out.append((i, j, overlap))
        return out

    def serialised(self) -> bool | None:
        """No two server-side timing runs overlap, and every /time and /equivalence request
        made one (a proof ends in its timing contrast, time_forms); None when not observable
        (--plain)."""
        if not self.instrumented:
            return None
        intervals = [(r["start"], r["end"]) for r in self.server_intervals]
        expected = len(self.of("/time")) + len(self.of("/equivalence"))
        return len(intervals) == expected and not self.overlaps(intervals)

    def memory(self) -> tuple[int, int, int, float] | None:
        """(builds at first, KiB, builds at last, relative change)."""
        if not self.rss:
            return None
        first = next((r for r in self.rss if r[0] >= MEMORY_FIRST), self.rss[0])
        last = next((r for r in self.rss if r[0] >= MEMORY_LAST), self.rss[-1])
        return first[0], first[1], last[0], last[1] / first[1] - 1

    def memory_ok(self) -> bool:
        m = self.memory()
        return m is not None and abs(m[3]) <= MEMORY_TOLERANCE

    def passed(self) -> bool:
        return not self.failures and self.serialised() is not False and self.memory_ok()


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).strip()


def builder_session(app: App, load: Load, index: int, jobs: list, start: threading.Event):
    from gradio_client import Client

    name = f"session {index}"
    try:
        client = Client(app.url, verbose=False)
    except Exception as exc:  # noqa: BLE001 - every failure is counted and printed
        for _ in jobs:
            load.record(Call("/build", name, 0.0, f"Client(): {_describe(exc)}"), app.pid)
        return
    try:
        start.wait()
        for config, spec in jobs:
            t0 = time.perf_counter()
            try:
                out = client.predict(json.dumps(config), api_name="/build")
                error = check_build(out, spec)
                params = out.get("params") if isinstance(out, dict) else None
            except Exception as exc:  # noqa: BLE001
                error, params = f"{json.dumps(config)}: {_describe(exc)}", None
            else:
                if error:
                    error = f"{json.dumps(config)}: {error}"
            load.record(Call("/build", name, time.perf_counter() - t0, error, spec, params),
                        app.pid)
    finally:
        client.close()


def timer_session(app: App, load: Load, index: int, batches: list[int],
                  barrier: threading.Barrier, start: threading.Event):
    from gradio_client import Client
    from gradio_client.utils import Status

    name = f"timer {index}"
    client = None
    try:
        client = Client(app.url, verbose=False)
    except Exception as exc:  # noqa: BLE001
        load.record(Call("/time", name, 0.0, f"Client(): {_describe(exc)}"), app.pid)
    start.wait()
    try:
        for batch in batches:
            try:
                barrier.wait(timeout=600)  # every timer sends its request at once
            except threading.BrokenBarrierError:
                pass
            if client is None:
                continue
            t0 = time.perf_counter()
            started = None
            try:
                job = client.submit(*timing_args(TIMING_SPEC, batch), api_name="/time")
                while not job.done():
                    if started is None and job.status().code in (Status.PROCESSING,
                                                                 Status.PROGRESS):
                        started = time.monotonic()
                    time.sleep(0.01)
                out = job.result()
                error = check_time(out, TIMING_SPEC, batch)
                contended = error is None and "(contended)" in out[1]["data"][0][4]
            except Exception as exc:  # noqa: BLE001
                error, contended = _describe(exc), False
            end = time.monotonic()
            load.record(Call("/time", name, time.perf_counter() - t0, error, TIMING_SPEC,
                             processing=(started or end, end), contended=contended), app.pid)
    finally:
        if client is not None:
            client.close()


def prover_session(app: App, load: Load, index: int, rounds: int, start: threading.Event):
    from gradio_client import Client

    name = f"prover {index}"
    try:
        client = Client(app.url, verbose=False)
    except Exception as exc:  # noqa: BLE001
        load.record(Call("/equivalence", name, 0.0, f"Client(): {_describe(exc)}"), app.pid)
        return
    start.wait()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            try:
                error = check_proof(client.predict(*proof_args(PROOF_SPEC),
                                                   api_name="/equivalence"), PROOF_SPEC)
            except Exception as exc:  # noqa: BLE001
                error = _describe(exc)
            load.record(Call("/equivalence", name, time.perf_counter() - t0, error,
                             PROOF_SPEC), app.pid)
    finally:
        client.close()


def run_load(app: App, sessions: int = 20, builds: int = 15, timers: int = 4, rounds: int = 3,
             seed: int = 0, provers: int = 0) -> Load:
    """The load itself against a running app: every session, timer and prover in its own
    thread."""
    load = Load(sessions, builds, timers, rounds, seed, instrumented=app.timing_log is not None,
                provers=provers)
    jobs = []
    for index in range(sessions):
        rng = random.Random(f"{seed}-session-{index}")
        jobs.append([random_config(rng) for _ in range(builds)])
    rng = random.Random(f"{seed}-timers")
    batches = [[rng.choice([1, 2]) for _ in range(rounds)] for _ in range(timers)]
    start = threading.Event()
    barrier = threading.Barrier(max(timers, 1))
    threads = [threading.Thread(target=builder_session, args=(app, load, i, jobs[i], start),
                                name=f"session-{i}") for i in range(sessions)]
    threads += [threading.Thread(target=timer_session,
                                 args=(app, load, i, batches[i], barrier, start),
                                 name=f"timer-{i}") for i in range(timers)]
    threads += [threading.Thread(target=prover_session, args=(app, load, i, rounds, start),
                                 name=f"prover-{i}") for i in range(provers)]
    already = len(app.timing_intervals())
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # the Clients connect (each fetches the app's config) before the clock
    t0 = time.perf_counter()
    start.set()
    for thread in threads:
        thread.join()
    load.wall_s = time.perf_counter() - t0
    load.server_intervals = app.timing_intervals()[already:]
    load.final_rss = rss_kib(app.pid)
    return load


# -- the report ----------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def table(load: Load) -> str:
    rows = ["| endpoint | requests | failures | p50 (s) | p95 (s) | max (s) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for endpoint in ("/build", "/time", "/equivalence"):
        calls = load.of(endpoint)
        seconds = [c.seconds for c in calls]
        rows.append(f"| {endpoint} | {len(calls)} | {sum(c.error is not None for c in calls)} "
                    f"| {pct(seconds, .5):.2f} | {pct(seconds, .95):.2f} "
                    f"| {max(seconds, default=float('nan')):.2f} |")
    runs = [r["end"] - r["start"] for r in load.server_intervals]
    if runs:
        rows.append(f"| /time, server-side run only | {len(runs)} | – | {pct(runs, .5):.2f} "
                    f"| {pct(runs, .95):.2f} | {max(runs):.2f} |")
    return "\n".join(rows)


def verdict_lines(load: Load) -> list[str]:
    lines = []
    total = len(load.calls)
    lines.append(f"- requests: {total} in {load.wall_s:.1f} s ({total / load.wall_s:.2f}/s); "
                 f"failures: {len(load.failures)}")
    serial = load.serialised()
    intervals = sorted((r["start"], r["end"]) for r in load.server_intervals)
    if serial is None:
        lines.append("- timing serialised: not observable (--plain: /time's result has no "
                     "server-side start or end)")
    else:
        gaps = [b[0] - a[1] for a, b in zip(intervals, intervals[1:], strict=False)]
        overlaps = load.overlaps(intervals)
        lines.append(
            f"- timing serialised (server-side, time.monotonic() at entry and exit of "
            f"builder.timing in the app process): {'yes' if serial else 'NO'}; "
            f"{len(intervals)} runs logged for {len(load.of('/time'))} /time and "
            f"{len(load.of('/equivalence'))} /equivalence requests, "
            f"{len(overlaps)} overlapping pairs"
            + (f", smallest gap between runs {min(gaps) * 1000:.1f} ms" if gaps else "")
            + (f", largest overlap {max(o[2] for o in overlaps) * 1000:.1f} ms"
               if overlaps else ""))
    client = [c.processing for c in load.of("/time") if c.processing]
    client_overlaps = load.overlaps(client)
    lines.append(
        f"- timing, client-side view (first seen PROCESSING to result, 10 ms polls of "
        f"gradio_client's status, which itself polls every 50 ms; reported, not checked): "
        f"{len(client_overlaps)} overlapping pairs"
        + (f", largest {max(o[2] for o in client_overlaps) * 1000:.0f} ms"
           if client_overlaps else ""))
    times = load.of("/time")
    lines.append(f"- /time results the app marked contended by other work: "
                 f"{sum(c.contended for c in times)} of {len(times)}")
    memory = load.memory()
    if memory is None:
        lines.append("- resident memory: not measured (no builds)")
    else:
        n0, kib0, n1, change = memory
        kib1 = next(k for n, k in load.rss if n == n1)
        lines.append(
            f"- app resident memory (VmRSS): {kib0 / 1024:.1f} MiB after {n0} builds, "
            f"{kib1 / 1024:.1f} MiB after {n1} builds: {change:+.1%} "
            f"({'within' if load.memory_ok() else 'NOT within'} "
            f"{MEMORY_TOLERANCE:.0%}); every 30 builds: "
            + ", ".join(f"{k / 1024:.0f}" for _, k in load.rss) + " MiB")
    if load.final_rss is not None:
        lines.append(f"- app resident memory after everything (the timings and proofs "
                     f"included): {load.final_rss / 1024:.1f} MiB (reported, not judged)")
    lines.append(f"- verdict: {'PASS' if load.passed() else 'FAIL'}")
    return lines


def device_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores"


def versions() -> str:
    import gradio
    import gradio_client
    import torch

    return (f"Python {platform.python_version()}, torch {torch.__version__}, gradio "
            f"{gradio.__version__}, gradio_client {gradio_client.__version__}")


def section(load: Load, command: str, load_before, load_after, when: dt.datetime) -> str:
    def avg(values):
        return " / ".join(f"{v:.2f}" for v in values)

    launched = ("`app.py` run through the timing wrapper described in `benchmarks/load_app.py`"
                if load.instrumented else "`python app.py`")

    head = (
        f"## Load: concurrent gradio_client sessions against the app (issue 7) "
        f"({when:%Y-%m-%d %H:%M} UTC)\n\n"
        f"`{command}`; {device_line()}; {versions()}. Load average (1 / 5 / 15 min) "
        f"{avg(load_before)} before, {avg(load_after)} after (the 2 cores are shared with "
        f"other work). The app ({launched}, one process on 127.0.0.1) served {load.sessions} "
        f"sessions x {load.builds} /build calls of random valid specs (seed {load.seed}; "
        f"each its own Client and thread; the app's /build concurrency limit is 2) while "
        f"{load.timers} more Clients sent /time at once ({load.rounds} rounds; CPU, "
        f"{TIMING_SPEC.name} at {TIMING_SPEC.image_size}x{TIMING_SPEC.image_size}, batch 1-2, "
        f"the app's default iterations)"
        + (f" and {load.provers} Clients sent /equivalence ({load.rounds} each; the whole "
           f"network of {PROOF_SPEC.name}, eval and train)" if load.provers else "")
        + ". Latency is client-side, submit to result; for /time and /equivalence it "
        "includes the wait in the device queue.\n\n")
    return head + table(load) + "\n\n" + "\n".join(verdict_lines(load)) + "\n"


def print_failures(load: Load) -> None:
    for call in load.failures:
        print(f"\nFAILED {call.endpoint} ({call.worker}, {call.seconds:.2f} s):\n{call.error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent /build clients")
    parser.add_argument("--builds", type=int, default=15, help="/build calls per session")
    parser.add_argument("--timers", type=int, default=4, help="concurrent /time clients")
    parser.add_argument("--rounds", type=int, default=3,
                        help="/time requests per timer, /equivalence requests per prover")
    parser.add_argument("--provers", type=int, default=0, help="concurrent /equivalence clients")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--plain", action="store_true",
                        help="launch app.py without the timing wrapper (serialisation is then "
                             "not observable)")
    parser.add_argument("--append", action="store_true",
                        help=f"append the results to {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if min(args.sessions, args.builds, args.timers, args.rounds) < 1:
        parser.error("--sessions, --builds, --timers and --rounds must be 1 or more")
    command = "benchmarks/load_app.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = os.getloadavg()
    when = dt.datetime.now(dt.timezone.utc)
    print(f"load average before: {load_before}; launching the app ...", flush=True)
    app = launch(instrument=not args.plain)
    try:
        print(f"app pid {app.pid} at {app.url}; VmRSS {rss_kib(app.pid) / 1024:.1f} MiB idle; "
              f"{args.sessions} sessions x {args.builds} builds, {args.timers} timers x "
              f"{args.rounds} rounds ...", flush=True)
        load = run_load(app, args.sessions, args.builds, args.timers, args.rounds, args.seed,
                        args.provers)
        alive = app.process.poll() is None
    finally:
        tail = app.log_tail()
        app.stop()
    load_after = os.getloadavg()
    print_failures(load)
    if load.failures or not alive:
        print(f"\n--- the app's output (last 4000 characters) ---\n{tail}")
    text = section(load, command.strip(), load_before, load_after, when)
    print("\n" + text)
    if args.append:
        with RESULTS.open("a") as handle:
            handle.write("\n" + text)
        print(f"appended to {RESULTS}")
    return 0 if load.passed() and alive else 1


if __name__ == "__main__":
    sys.exit(main())
