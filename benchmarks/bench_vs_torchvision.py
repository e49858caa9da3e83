"""The generated ResNeXt-50 (32x4d), form (c), against torchvision's resnext50_32x4d.

    python benchmarks/bench_vs_torchvision.py [--device auto|cpu|cuda] [--rounds N] [--no-append]

In one run, on one device, under identical settings: both models eager, both with
torch.compile, then this project's fastest mode (FASTEST: on the CPU torch.compile with
Inductor's freezing and channels_last; on a GPU BN folded, compiled, CUDA graphs), and
torchvision compiled with the fastest mode's generic settings (all of it but builder's own BN
folding, `fast`). Two ratios for the fastest mode: against torchvision compiled under the base
settings (the issue's target), and against torchvision given the same generic settings (what
is builder's own, rather than a setting any model can be given). Then
forms (a), (b), (c) side by side, for one conv2 block and for the whole network. Prints the
tables and appends them to benchmarks/RESULTS.md.

A target is "met" or "MISSED" only when every run of both contenders it compares is clean: not
flagged noisy (IQR >= 10% of the median) and within 5% of torch.utils.benchmark.Timer's median
of the same step; otherwise it is "not established", with the reason.

Settings: on a GPU batch 128, 224x224, bf16 autocast, channels_last, inference; on the CPU fp32,
batch 16, 224x224, inference (the usual NCHW layout; channels_last only where a mode says so).

How it is measured (builder.timing): one random batch drawn once, warm-up iterations excluded,
CUDA events on a GPU and time.perf_counter on the CPU, median with min/max/IQR; every contender
is also timed by torch.utils.benchmark.Timer on the same step in the same process, and both
medians are printed (they should agree within 5%).

Each contender runs in its own process: one process timing many models fragments memory and
skews cuDNN's algorithm choices (timm issue 955). One process per contender can also hide a
difference (issue 14: an out-of-place shortcut add cost 8-18%), so the two eager models are
also timed interleaved in one process (`--interleaved-rounds`, default 6; 0 skips it).
With --rounds N the contenders run N times, interleaved (A B C ... A B C ...), and each
reports the median of its rounds' medians: on a shared CPU that keeps a burst of someone
else's work from landing on one contender only.

Both contenders run in the same interpreter, with the same torch: torchvision does not import
beside this project's CPU torch 2.13, so the benchmark makes (or reuses) its own virtual
environment, benchmarks/.venv-torchvision, with `pip install torch==2.14.1 torchvision==0.29.1`
(both lie on this machine's disk; creating it takes a few minutes). Pass --python to use another
interpreter that has torch and torchvision (a GPU machine's). The generated model is imported
from builder/ in that interpreter; the worker imports builder's torch-only modules (spec,
blocks, network, complexity, convert, timing) without builder/__init__, so Gradio, torchinfo and
graphviz need not be installed there.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "benchmarks" / ".venv-torchvision"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
PINS = ("torch==2.14.1", "torchvision==0.29.1")
PRESET = "resnext50_32x4d"
MARK = "@@RESULT@@ "

# Settings per device type (the issue's): shared by every contender of a run.
BASE = {
    "cuda": {"batch_size": 128, "image_size": 224, "dtype": "bf16", "channels_last": True,
             "mode": "inference", "warmup": 10, "iters": 50},
    "cpu": {"batch_size": 16, "image_size": 224, "dtype": "fp32", "channels_last": False,
            "mode": "inference", "warmup": 2, "iters": 10},
}
# This project's fastest inference mode per device type. CPU: what won when measured (--explore,
# see RESULTS.md: Inductor's freezing with channels_last). GPU: not yet measured on a GPU by
# this project; the candidates are in EXPLORE["cuda"].
FASTEST = {
    "cuda": {"fast": True, "compile": True, "cuda_graphs": True},
    "cpu": {"compile": True, "freeze": True, "channels_last": True},
}
# What of the fastest mode any model can be given (all but folding BN, this project's own):
# torchvision gets it too, with torch.compile, so the report can tell what the folding buys.
OWN = ("fast",)
AGREE = 0.05  # a run's median and Timer's must agree within this, as the issue asks


def generic(device: str) -> dict:
    return {k: v for k, v in FASTEST[device].items() if k not in OWN and k != "compile"}
# Candidates for the fastest mode, timed with --explore (the generated model only).
EXPLORE = {
    "cuda": [{}, {"cuda_graphs": True}, {"fast": True}, {"fast": True, "cuda_graphs": True},
             {"compile": True}, {"fast": True, "compile": True},
             {"compile": True, "cuda_graphs": True},
             {"fast": True, "compile": True, "cuda_graphs": True},
             {"compile": True, "freeze": True}, {"compile": True, "freeze": True,
                                                 "cuda_graphs": True}],
    "cpu": [{}, {"channels_last": True}, {"fast": True}, {"fast": True, "channels_last": True},
            {"compile": True}, {"compile": True, "channels_last": True},
            {"fast": True, "compile": True}, {"fast": True, "compile": True, "channels_last": True},
            {"compile": True, "freeze": True},
            {"compile": True, "freeze": True, "channels_last": True},
            {"fast": True, "compile": True, "freeze": True, "channels_last": True}],
}
# Interleaved in one process (issue 14's setting on the CPU: channels_last, batch 8, 224, fp32
# inference), the rounds alternating which model goes first.
INTERLEAVED = {
    "cuda": {**BASE["cuda"], "warmup": 10, "iters": 20},
    "cpu": {"batch_size": 8, "image_size": 224, "dtype": "fp32", "channels_last": True,
            "mode": "inference", "warmup": 1, "iters": 3},
}
EXPLORE_ITERS = {"cuda": {"warmup": 10, "iters": 20}, "cpu": {"warmup": 2, "iters": 4}}
# Forms side by side: one conv2 block (256-d in/out, C=32, d=4, 56x56) and the network. Form (a)
# is slow (32 paths of tiny convolutions): on the CPU the network table uses a smaller batch.
FORMS = {
    "cuda": {"block": {"batch_size": 128, "warmup": 5, "iters": 20},
             "network": {"batch_size": 32, "warmup": 3, "iters": 10}},
    "cpu": {"block": {"batch_size": 16, "warmup": 1, "iters": 5},
            "network": {"batch_size": 2, "warmup": 1, "iters": 3}},
}


# -- worker: runs inside the benchmark interpreter -----------------------------------------------
def _import_builder():
    """builder's torch-only modules, without running builder/__init__ (which imports the
    app's optional dependencies)."""
    import types

    if "builder" not in sys.modules:
        package = types.ModuleType("builder")
        package.__path__ = [str(ROOT / "builder")]
        sys.modules["builder"] = package
    from builder import timing
    from builder.complexity import network_counts
    from builder.convert import randomize_
    from builder.network import build_model
    from builder.spec import PRESETS

    return timing, network_counts, randomize_, build_model, PRESETS


def worker(job: dict) -> dict:
    import torch

    timing, network_counts, randomize_, build_model, PRESETS = _import_builder()
    spec = PRESETS[PRESET]
    settings = dict(job["settings"])
    if job["kind"] == "probe":
        import torchvision

        cuda = torch.cuda.is_available()
        return {"cuda": cuda, "torch": torch.__version__, "torchvision": torchvision.__version__,
                "python": sys.version.split()[0], "threads": torch.get_num_threads(),
                "device_name": timing.device_name(torch.device("cuda" if cuda else "cpu")),
                "executable": sys.executable}
    if job["kind"] == "forms":
        block = 0 if job["unit"] == "block" else None
        results = timing.time_forms(spec, block=block, **settings)
        return {"results": [r.to_dict() for r in results]}
    torch.manual_seed(0)
    ours = randomize_(build_model(spec), seed=0)  # random weights and BN statistics
    if job["kind"] == "interleaved":
        return interleaved(timing, ours, network_counts(spec).macs, settings, job["rounds"])
    if job["kind"] == "torchvision":
        import torchvision

        model = torchvision.models.resnext50_32x4d(weights=None)
        model.load_state_dict(ours.state_dict())  # same keys: the same weights, exactly
        del ours
        result = timing.time_model(model, macs=network_counts(spec).macs,
                                   name="torchvision resnext50_32x4d", cross_check=True,
                                   **settings)
        result.notes.append(f"torchvision {torchvision.__version__}")
    else:
        result = timing.time_model(ours, cross_check=True, name=job["name"], **settings)
    return {"result": result.to_dict()}


def interleaved(timing, ours, macs: int, settings: dict, rounds: int) -> dict:
    """Ours and torchvision's (the same weights) in one process, taking turns: each round
    times each model for settings["iters"] iterations (after its warm-up), alternating which
    goes first. One process per contender hid a 0.82-0.92x gap (issue 14); here both see the
    same allocator, threads and moments of a shared machine. Returns both medians over every
    timed iteration and their ratio."""
    import torchvision

    theirs = torchvision.models.resnext50_32x4d(weights=None)
    theirs.load_state_dict(ours.state_dict())
    times = {"builder": [], "torchvision": []}
    models = {"builder": ours, "torchvision": theirs}
    for round_ in range(rounds):
        order = ("builder", "torchvision") if round_ % 2 == 0 else ("torchvision", "builder")
        for key in order:
            result = timing.time_model(models[key], macs=macs, name=key, **settings)
            times[key] += result.times_ms
    medians = {key: statistics.median(value) for key, value in times.items()}
    return {"medians_ms": medians, "iterations": {k: len(v) for k, v in times.items()},
            "ratio": medians["torchvision"] / medians["builder"],
            "torchvision": torchvision.__version__}


# -- parent --------------------------------------------------------------------------------------
def ensure_venv() -> Path:
    """benchmarks/.venv-torchvision with the pinned torch and torchvision; reused when it has
    them."""
    python = VENV / "bin" / "python"
    check = ("import torch, torchvision; "
             f"assert torch.__version__.split('+')[0] == {PINS[0].split('==')[1]!r}; "
             f"assert torchvision.__version__.split('+')[0] == {PINS[1].split('==')[1]!r}")
    if python.exists() and subprocess.run([str(python), "-c", check],
                                          capture_output=True).returncode == 0:
        print(f"reusing {VENV.relative_to(ROOT)} ({', '.join(PINS)})", flush=True)
        return python
    print(f"creating {VENV.relative_to(ROOT)}: pip install {' '.join(PINS)} "
          "(wheels from this machine's disk; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PINS], check=True)
    subprocess.run([str(python), "-c", check], check=True)
    return python


def run_worker(python: str, job: dict, timeout: float) -> dict:
    """One contender in a fresh process; its result is the line after MARK on stdout."""
    env = {**os.environ, "PYTHONPATH": ""}
    begin = time.perf_counter()
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(ROOT))
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    data = json.loads(lines[-1][len(MARK):])
    data["wall_s"] = time.perf_counter() - begin
    return data


def contenders(device: str, base: dict) -> list[dict]:
    compiled = {**base, "compile": True}
    fastest = {**base, **FASTEST[device]}
    return [
        {"key": "tv_eager", "kind": "torchvision", "name": "torchvision, eager", "settings": base},
        {"key": "our_eager", "kind": "builder", "name": "builder form (c), eager",
         "settings": base},
        {"key": "tv_compile", "kind": "torchvision", "name": "torchvision, torch.compile",
         "settings": compiled},
        {"key": "our_compile", "kind": "builder", "name": "builder form (c), torch.compile",
         "settings": compiled},
        {"key": "tv_compile_generic", "kind": "torchvision",
         "name": "torchvision, torch.compile + " + mode_name(generic(device)),
         "settings": {**compiled, **generic(device)}},
        {"key": "our_fastest", "kind": "builder",
         "name": "builder fastest: " + " + ".join(k for k, v in FASTEST[device].items() if v),
         "settings": fastest},
    ]


def run_problems(run: dict) -> list[str]:
    """Why one run's median cannot be trusted: flagged noisy, or off Timer's by over 5%."""
    problems = []
    if run["noisy"]:
        problems.append("noisy (IQR >= 10% of the median)")
    check = run.get("check_median_ms")
    if not check:
        problems.append("no Timer cross-check")
    elif abs(run["median_ms"] / check - 1) > AGREE:
        problems.append(f"median {run['median_ms']:.1f} ms vs Timer {check:.1f} ms "
                        f"({100 * (run['median_ms'] / check - 1):+.1f}%)")
    return problems


def verdict(summary: dict, ours: str, theirs: str, target: float | None) -> str:
    """'1.234x, met' / 'MISSED' (just the ratio where `target` is None), or 'not established
    (...)' when any run of either contender is noisy or disagrees with its Timer cross-check by
    more than 5%."""
    if "img_s" not in summary[ours] or "img_s" not in summary[theirs]:
        return "not measured (a contender failed)"
    value = summary[ours]["img_s"] / summary[theirs]["img_s"]
    problems = [f"{summary[key]['name']} round {i + 1}: {problem}"
                for key in (ours, theirs) for i, run in enumerate(summary[key]["runs"])
                for problem in run_problems(run)]
    if problems:
        return f"{value:.3f}x, not established ({'; '.join(problems)})"
    if target is None:
        return f"{value:.3f}x"
    return f"{value:.3f}x, {'met' if value >= target else 'MISSED'}"


def mode_name(extra: dict) -> str:
    return " + ".join(k for k, v in extra.items() if v) or "eager"


def explore(python: str, device: str, base: dict, timeout: float) -> str:
    """Time each candidate mode of the generated model, each in its own process."""
    rows = [["mode (generated model)", "img/s", "median ms", "IQR %", "Timer median ms",
             "vs eager"]]
    first = None
    for extra in EXPLORE[device]:
        name = mode_name(extra)
        print(f"  explore: {name} ...", end=" ", flush=True)
        settings = {**base, **extra, **EXPLORE_ITERS[device]}
        data = run_worker(python, {"kind": "builder", "name": name, "settings": settings},
                          timeout)
        if "error" in data:
            print("FAILED\n    " + data["error"].replace("\n", "\n    "))
            rows.append([name, "failed", "", "", "", ""])
            continue
        r = data["result"]
        first = first or r["images_per_s"]
        print(f"{r['images_per_s']:,.1f} img/s ({data['wall_s']:.0f} s)", flush=True)
        rows.append([name, f"{r['images_per_s']:,.1f}", f"{r['median_ms']:.1f}",
                     f"{100 * r['iqr_ms'] / r['median_ms']:.1f}", f"{r['check_median_ms']:.1f}",
                     f"{r['images_per_s'] / first:.2f}x"])
    text = ("Candidate fastest modes of the generated model (one process each, same settings "
            f"otherwise, {EXPLORE_ITERS[device]['warmup']} warm-up + "
            f"{EXPLORE_ITERS[device]['iters']} timed iterations):\n\n" + fmt_table(rows))
    print(text, flush=True)
    return text


def one_process(python: str, device: str, args) -> str:
    """Ours against torchvision's, interleaved in one process (the job "interleaved")."""
    if args.interleaved_rounds < 1:
        return ""
    settings = {**INTERLEAVED[device], "device": device}
    print(f"  interleaved in one process: {args.interleaved_rounds} rounds ...", end=" ",
          flush=True)
    data = run_worker(python, {"kind": "interleaved", "settings": settings,
                               "rounds": args.interleaved_rounds}, args.timeout)
    if "error" in data:
        print("FAILED\n    " + data["error"].replace("\n", "\n    "))
        return f"Interleaved in one process: failed ({data['error'].splitlines()[-1]})"
    m, n = data["medians_ms"], data["iterations"]
    text = (f"Interleaved in one process ({', '.join(f'{k}={v}' for k, v in settings.items())}; "
            f"{args.interleaved_rounds} rounds, each model {settings['iters']} timed iterations "
            "a round after its warm-up, alternating which goes first; the same weights): "
            f"builder form (c) median {m['builder']:.1f} ms over {n['builder']} iterations, "
            f"torchvision {m['torchvision']:.1f} ms over {n['torchvision']}: builder at "
            f"{data['ratio']:.3f}x torchvision's speed.")
    print(f"{data['ratio']:.3f}x", flush=True)
    return text


def fmt_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
           for row in rows]
    out.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--python", help="interpreter with torch and torchvision "
                        "(default: benchmarks/.venv-torchvision, created if missing)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every contender this many times, interleaved")
    parser.add_argument("--iters", type=int, help="timed iterations (default: CPU 10, GPU 50)")
    parser.add_argument("--warmup", type=int, help="warm-up iterations (default: CPU 2, GPU 10)")
    parser.add_argument("--batch", type=int, help="batch size (default: CPU 16, GPU 128)")
    parser.add_argument("--explore", action="store_true",
                        help="first time the candidate fastest modes of the generated model")
    parser.add_argument("--no-forms", action="store_true", help="skip the forms tables")
    parser.add_argument("--interleaved-rounds", type=int, default=6,
                        help="rounds of ours and torchvision's taking turns in one process "
                             "(0: skip)")
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(MARK + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    python = args.python or str(ensure_venv())
    probe = run_worker(python, {"kind": "probe", "settings": {}}, 600)
    if "error" in probe:
        print(f"error: the benchmark interpreter {python} cannot run: {probe['error']}")
        return 1
    device = ("cuda" if probe["cuda"] else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not probe["cuda"]:
        print(f"error: --device cuda, but torch {probe['torch']} in {python} sees no CUDA GPU")
        return 2
    base = {**BASE[device], "device": device}
    for name, key in (("iters", "iters"), ("warmup", "warmup"), ("batch", "batch_size")):
        if getattr(args, name):
            base[key] = getattr(args, name)
    started = datetime.datetime.now().astimezone()
    print(f"{started:%Y-%m-%d %H:%M %Z}: {PRESET} on {device} ({probe['device_name']}), "
          f"torch {probe['torch']}, torchvision {probe['torchvision']}, "
          f"Python {probe['python']}, {python}", flush=True)

    explore_text = explore(python, device, base, args.timeout) if args.explore else ""
    jobs = contenders(device, base)
    runs: dict[str, list[dict]] = {job["key"]: [] for job in jobs}
    for round_ in range(args.rounds):
        for job in jobs:
            print(f"  round {round_ + 1}/{args.rounds}: {job['name']} ...", end=" ", flush=True)
            data = run_worker(python, job, args.timeout)
            if "error" in data:
                print("FAILED")
                print("    " + data["error"].replace("\n", "\n    "))
                runs[job["key"]].append({"error": data["error"]})
                continue
            r = data["result"]
            runs[job["key"]].append(r)
            print(f"{r['images_per_s']:,.1f} img/s (median {r['median_ms']:.1f} ms, IQR "
                  f"{100 * r['iqr_ms'] / r['median_ms']:.0f}%, Timer {r['check_median_ms']:.1f}"
                  f" ms; process {data['wall_s']:.0f} s)", flush=True)

    summary = {}
    for job in jobs:
        good = [r for r in runs[job["key"]] if "error" not in r]
        if good:
            summary[job["key"]] = {
                "name": job["name"], "runs": good,
                "img_s": statistics.median(r["images_per_s"] for r in good),
                "median_ms": statistics.median(r["median_ms"] for r in good),
                "check_ms": statistics.median(r["check_median_ms"] for r in good),
                "noisy": sum(r["noisy"] for r in good)}
        else:
            summary[job["key"]] = {"name": job["name"], "error": runs[job["key"]][-1]["error"]}

    def ratio(a, b):
        if "img_s" not in summary[a] or "img_s" not in summary[b]:
            return None
        return summary[a]["img_s"] / summary[b]["img_s"]

    reference = {"tv_eager": "tv_eager", "our_eager": "tv_eager", "tv_compile": "tv_eager",
                 "our_compile": "tv_compile", "tv_compile_generic": "tv_compile",
                 "our_fastest": "tv_compile"}
    rows = [["contender", "img/s", "median ms", "Timer median ms", "runs agreeing (5%)",
             "noisy runs", "ratio", "vs"]]
    for job in jobs:
        s = summary[job["key"]]
        if "error" in s:
            rows.append([s["name"], "failed", "", "", "", "", "", ""])
            continue
        agreeing = sum(not any(p.startswith("median") or p.startswith("no Timer")
                               for p in run_problems(r)) for r in s["runs"])
        ref = reference[job["key"]]
        value = ratio(job["key"], ref)
        rows.append([s["name"], f"{s['img_s']:,.1f}", f"{s['median_ms']:.1f}",
                     f"{s['check_ms']:.1f}", f"{agreeing}/{len(s['runs'])}",
                     f"{s['noisy']}/{len(s['runs'])}",
                     "" if value is None else f"{value:.3f}x", summary[ref]["name"]])
    table = fmt_table(rows)
    generic_name = summary["tv_compile_generic"]["name"]
    targets = [
        "- target: eager >= 1.00x torchvision eager: "
        + verdict(summary, "our_eager", "tv_eager", 1.0),
        "- target: fastest mode >= 1.15x torchvision with torch.compile (base settings): "
        + verdict(summary, "our_fastest", "tv_compile", 1.15),
        f"- not a target: fastest mode vs {generic_name} (the same generic settings, which "
        "any model can be given; what is left is builder's own): "
        + verdict(summary, "our_fastest", "tv_compile_generic", None),
    ]
    print("\n" + table + "\n\n" + "\n".join(targets), flush=True)

    interleaved_text = one_process(python, device, args)
    forms_text = ""
    if not args.no_forms:
        parts = []
        for unit in ("block", "network"):
            settings = {**base, **FORMS[device][unit]}
            print(f"  forms (a), (b), (c): {unit} ...", end=" ", flush=True)
            data = run_worker(python, {"kind": "forms", "unit": unit, "settings": settings},
                              args.timeout)
            if "error" in data:
                print("FAILED\n    " + data["error"].replace("\n", "\n    "))
                parts.append(f"{unit}: failed ({data['error'].splitlines()[-1]})")
                continue
            print(f"done ({data['wall_s']:.0f} s)", flush=True)
            results = data["results"]
            frows = [["form", "median ms", "IQR %", "img/s", "TFLOP/s", "% of matmul peak",
                      "speed vs (c)", "noisy"]]
            for r in results:
                frows.append([r["name"], f"{r['median_ms']:.2f}",
                              f"{100 * r['iqr_ms'] / r['median_ms']:.1f}",
                              f"{r['images_per_s']:,.1f}", f"{r['tflops']:.3g}",
                              f"{r['peak_percent']:.1f}",
                              f"{r['images_per_s'] / results[-1]['images_per_s']:.2f}x",
                              "yes" if r["noisy"] else ""])
            what = ("one conv2 block (256-d in and out, C=32, d=4, 56x56)" if unit == "block"
                    else "the whole network")
            parts.append(f"Forms side by side, {what}: batch {settings['batch_size']}, "
                         f"{settings['warmup']} warm-up + {settings['iters']} timed iterations, "
                         f"{settings['dtype']}, "
                         f"{'channels_last' if settings['channels_last'] else 'NCHW'}, "
                         "inference, eager.\n\n" + fmt_table(frows))
            print(parts[-1], flush=True)
        forms_text = "\n\n".join(parts)

    settings_text = ", ".join(f"{k}={v}" for k, v in base.items())
    peak = next((r["runs"][0]["peak_tflops"] for r in summary.values() if "runs" in r), None)
    noisy_any = any(s.get("noisy") for s in summary.values())
    section = "\n".join([
        f"\n## bench_vs_torchvision: {PRESET}, {device.upper()} ({started:%Y-%m-%d %H:%M %Z})",
        "",
        f"- Device: {'GPU' if device == 'cuda' else 'CPU'} {probe['device_name']}; torch "
        f"{probe['torch']}, torchvision {probe['torchvision']}, Python {probe['python']}, in "
        f"`{Path(python).parent.parent.name if not args.python else python}` (the benchmark's "
        f"own venv: `pip install {' '.join(PINS)}`, wheels from this machine's disk; "
        "torchvision does not import beside the project's CPU torch 2.13).",
        f"- Settings (identical for both contenders): {settings_text}; random weights and BN "
        "statistics, the same for both (torchvision's model loads the generated model's "
        "state_dict); one random batch; each contender in its own process; "
        f"{args.rounds} round(s), interleaved; img/s is the median over rounds.",
        f"- Fastest mode: {' + '.join(k for k, v in FASTEST[device].items() if v)} "
        "(fast: builder's BN folding, checked against the unfolded output first; freeze: "
        "Inductor's freezing, weights as constants); "
        f"torchvision is also timed with torch.compile + {mode_name(generic(device))} (the "
        "fastest mode's generic settings), so that the report shows both ratios.",
        "- A target reads `met` or `MISSED` only when no run of the two contenders it compares "
        "is noisy and each run's median is within 5% of its Timer median; otherwise `not "
        "established`, with the runs at fault.",
        "- Matrix-multiply peak measured in the worker: "
        + ("n/a." if peak is None else f"{peak:.3g} TFLOP/s ({base['dtype']}), "
           "the denominator of `% of matmul peak`."),
        "- Independent check: torch.utils.benchmark.Timer on the same step, same process "
        "(`Timer median ms`).",
        "",
        table,
        "",
        *targets,
        "",
        interleaved_text,
        "",
        explore_text,
        "",
        forms_text,
        "",
        "- " + ("Noise: some runs have IQR >= 10% of the median (flagged `noisy`); this CPU is "
                "shared with other work, so compare ratios within this run, not absolute "
                "numbers." if noisy_any else "No run was flagged noisy (IQR < 10% of median)."),
        "- GPU run: " + ("this is it." if device == "cuda" else
                         "pending (no GPU was available to this run); on a GPU machine run "
                         "`python benchmarks/bench_vs_torchvision.py --device cuda --python "
                         "PYTHON_WITH_TORCHVISION`. The H100 reference in shared/RESNEXT.md is "
                         "9,856 img/s eager and 14,323 img/s compiled (bf16, channels_last, "
                         "batch 128); not measured here."),
        "",
    ])
    if not args.no_append:
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(section)  # one write: others append to this file too
        print(f"\nappended to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
