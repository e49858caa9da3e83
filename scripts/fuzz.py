"""Long fuzz run over every way a user hands this project input: spec fields, config dicts,
JSON text, the command line, the share link, and the resource guard.

    .venv/bin/python scripts/fuzz.py --seconds 240          # what benchmarks/RESULTS.md records
    .venv/bin/python scripts/fuzz.py --cases 100000 --seed 7
    .venv/bin/python scripts/fuzz.py --targets json,cli --seconds 60

Every case must end in a valid spec (which then has to survive a JSON round trip, the
estimate and the guard) or a SpecError whose one-line message starts with the field it
names; a command line must exit 0, 1 or 2 without a traceback, and 2 with one line on
stderr; the guard must answer in milliseconds. Anything else is a failure: it is printed
with its input, and the exit status is 1. tests/test_fuzz.py runs the same properties with
hypothesis, a few thousand examples; this is the long run, with its own plain random
generators (mutations of valid JSON, token soup, deep nesting) so the two search differently.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder import PRESETS, ResNeXtSpec, SpecError  # noqa: E402
from builder.cli import main  # noqa: E402
from builder.guards import MODES, Limits, ResourceLimitError, check, estimate  # noqa: E402
from builder.spec import BLOCKS, FORMS, LIMITS, STEMS, STRIDE_ON  # noqa: E402

try:
    from builder import share
except ImportError:
    share = None

FIELDS = tuple(f.name for f in dataclasses.fields(ResNeXtSpec))
NAMES = set(FIELDS) | {f"depths[{i}]" for i in range(LIMITS["stages"][1])} | {
    "config", "preset"}
SLOW_S = 5.0  # any one case taking more CPU seconds is a failure ("hangs")
GUARD_S = 0.2  # the guard answers in about a millisecond of CPU; building takes seconds


class Failure(Exception):
    """A broken property (not an exception the code under test raised)."""


# -- random values --------------------------------------------------------------------------
class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def text(self, n: int = 12) -> str:
        r = self.r
        pools = [string_printable, "abc3x1,", "\x00\n\t \\\"'{}[]%&=?#", None]
        pool = r.choice(pools)
        if pool is None:  # any code point, lone surrogates included
            return "".join(chr(r.randrange(0x110000)) for _ in range(r.randrange(n + 1)))
        return "".join(r.choice(pool) for _ in range(r.randrange(n + 1)))

    def integer(self) -> int:
        r = self.r
        kind = r.randrange(6)
        if kind == 0:
            return r.randrange(-3, 10)
        if kind == 1:
            return r.choice([0, 1, -1, 7, 8, 63, 64, 65, 128, 129, 1024, 2048, 2049, 4096,
                             4097, 100_000, 100_001, 2**31, 2**63, 2**64])
        if kind == 2:
            return r.choice([10**5000, -(10**5000), 10**4300 - 1, 10**4300])
        if kind == 3:
            return -r.randrange(1, 10**6)
        return r.randrange(1, 5000)

    def scalar(self):
        r = self.r
        kind = r.randrange(8)
        if kind == 0:
            return None
        if kind == 1:
            return r.random() < 0.5
        if kind == 2:
            return self.integer()
        if kind == 3:
            return r.choice([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 3.0, 32.0,
                             r.uniform(-1e6, 1e6)])
        if kind == 4:
            return self.text()
        if kind == 5:
            return bytes(r.randrange(256) for _ in range(r.randrange(8)))
        if kind == 6:
            return r.choice(["a", "b", "c", "basic", "bottleneck", "cifar", "imagenet", "3x3",
                             "1x1", "32", "3,4,6,3", "", "resnet50", "a" * 5000, "\udcff"])
        return complex(r.random(), r.random())

    def value(self, depth: int = 0):
        r = self.r
        if depth >= 3 or r.random() < 0.6:
            return self.scalar()
        kind = r.randrange(4)
        items = [self.value(depth + 1) for _ in range(r.randrange(4))]
        if kind == 0:
            return items
        if kind == 1:
            return tuple(items)
        if kind == 2:
            return {self.text(5): v for v in items}
        return DEEP[r.choice([10, 500, 990, 5000, 100_000])]

    def good(self, name: str):
        """A value of the right kind for a spec field (now and then at or past its limit)."""
        r = self.r
        if name in LIMITS:
            lo, hi = LIMITS[name]
            if r.random() < 0.1:
                return r.choice([lo - 1, lo, hi, hi + 1])
            return r.randint(lo, min(hi, 256))
        if name == "depths":
            lo, hi = LIMITS["depth"]
            depths = [r.randint(1, 6) if r.random() < 0.97 else r.choice([0, hi, hi + 1])
                      for _ in range(r.randint(1, 4) if r.random() < 0.9 else r.randint(0, 10))]
            return tuple(depths) if r.random() < 0.2 else depths
        if name == "zero_init_residual":
            return r.random() < 0.5
        return r.choice({"form": tuple(FORMS), "block": tuple(BLOCKS), "stem": STEMS,
                         "stride_on": STRIDE_ON}[name])

    def spec_kwargs(self) -> dict:
        kwargs = {name: self.good(name) for name in FIELDS if self.chance(0.4)}
        for _ in range(self.r.choice([0, 0, 0, 1, 2])):
            kwargs[self.r.choice(FIELDS)] = self.value()
        return kwargs

    def config(self) -> dict:
        data = self.spec_kwargs()
        if self.chance(0.3):
            data["preset"] = self.r.choice(sorted(PRESETS)) if self.chance(0.8) else self.value()
        if self.chance(0.1):
            data[self.text(8)] = self.value()
        return data

    def json_value(self, depth: int = 0):
        v = self.value(depth)
        try:
            json.dumps(v)
            return v
        except (TypeError, ValueError, RecursionError):
            return short(v, 20)


def _deep(n: int) -> list:
    value: list = []
    for _ in range(n):
        value = [value]
    return value


string_printable = "".join(chr(c) for c in range(32, 127))
DEEP = {n: _deep(n) for n in (10, 500, 990, 5000, 100_000)}  # made once: 100k levels take 0.1 s
TOKENS = ['{', '}', '[', ']', ',', ':', '"', '"cardinality"', '"depths"', '"form"', '"preset"',
          '"resnet18"', '"a"', '"c"', '1', '0', '-1', '4096', '4097', '3.5', '1e400', '-1e400',
          'NaN', 'Infinity', '-Infinity', 'null', 'true', 'false', ' ', '\n', '\\', '\\u0000',
          '"\\ud800"', '9' * 5000, '[' * 50, ']' * 50, '\ufeff', '//', '/*']
PRESET_JSON = [p.replace(form=f).to_json(indent=i) for p in PRESETS.values()
               for f, i in (("a", None), ("b", 2), ("c", 0))]


def json_text(g: Gen):
    r = g.r
    kind = r.randrange(7)
    if kind == 0:
        config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.config().items()}
        try:
            text = json.dumps(config)
        except (TypeError, ValueError, RecursionError):
            text = json.dumps({k: g.json_value() for k in config})
    elif kind == 1:
        text = "".join(r.choice(TOKENS) for _ in range(r.randrange(30)))
    elif kind in (2, 3):  # a valid config with a few edits
        text = r.choice(PRESET_JSON)
        for _ in range(r.randint(1, 4)):
            i = r.randrange(len(text) + 1)
            edit = r.randrange(4)
            char = r.choice('{}[],:"0123456789-.eE ntfaN\\\x00')
            if edit == 0:
                text = text[:i] + char + text[i:]
            elif edit == 1:
                text = text[:i] + text[i + 1:]
            elif edit == 2:
                text = text[:i] + char + text[i + 1:]
            else:
                j = r.randrange(len(text) + 1)
                text = text[:i] + text[min(i, j):max(i, j)] + text[i:]
    elif kind == 4:
        n = r.choice([100, 990, 1000, 5000, 60_000, 100_000])
        opener = r.choice(["[", '{"a":', '{"depths":['])
        text = opener * n + r.choice(["", "]" * n, "}" * n])
    elif kind == 5:
        n = r.choice([100, 60_000, 70_000])
        text = json.dumps({r.choice(FIELDS + ("preset", "x")): "a" * n})
    else:
        text = g.text(60)
    if r.random() < 0.2:  # as bytes, now and then not UTF-8
        data = text.encode("utf-8", "surrogatepass")
        if r.random() < 0.5:
            i = r.randrange(len(data) + 1)
            data = data[:i] + bytes([r.randrange(128, 256)]) + data[i:]
        return data
    return text


# -- properties -----------------------------------------------------------------------------
def spec_error_ok(exc: SpecError, names=NAMES) -> None:
    text = str(exc)
    if exc.field not in names or not text.startswith(f"{exc.field}: "):
        raise Failure(f"SpecError names {exc.field!r}: {text[:200]!r}")
    if "\n" in text or len(text) >= 400:
        raise Failure(f"SpecError message not one short line: {text[:200]!r}")


def valid_spec_ok(spec) -> None:
    if not isinstance(spec, ResNeXtSpec):
        raise Failure(f"not a spec: {spec!r}")
    if ResNeXtSpec.from_json(spec.to_json()) != spec:
        raise Failure("JSON round trip changed the spec")
    e = estimate(spec)
    if min(e.params, e.modules, e.activation_bytes, e.macs) <= 0:
        raise Failure(f"estimate not positive: {e}")
    try:
        check(spec)
    except ResourceLimitError as exc:
        if not str(exc).startswith(f"{exc.field}: "):
            raise Failure(f"guard message: {str(exc)[:200]!r}") from None
    if share is not None and share.from_query(share.to_query(spec)).spec != spec:
        raise Failure("share link round trip changed the spec")


def spec_outcome(make, names=NAMES) -> str:
    try:
        spec = make()
    except SpecError as exc:
        spec_error_ok(exc, names)
        return "refused"
    valid_spec_ok(spec)
    return "valid"


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # -h
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def cli_outcome(argv) -> str:
    code, out, err = run_cli(argv)
    if code not in (0, 1, 2):
        raise Failure(f"exit status {code!r}")
    if "Traceback" in err or "Traceback" in out:
        raise Failure(f"traceback: {err[-300:]!r}")
    if code == 2 and not (err.startswith("error: ") and err.count("\n") == 1):
        raise Failure(f"exit 2 without a one-line message: {err[:300]!r}")
    if code == 0 and (not out or err):
        raise Failure(f"exit 0 with stderr {err[:200]!r}")
    return {0: "valid", 1: "valid", 2: "refused"}[code]


# -- targets --------------------------------------------------------------------------------
def target_spec(g: Gen):
    kwargs = g.spec_kwargs()
    if g.chance(0.2):
        base = g.r.choice(list(PRESETS.values()))
        return kwargs, lambda: spec_outcome(lambda: base.replace(**kwargs))
    return kwargs, lambda: spec_outcome(lambda: ResNeXtSpec(**kwargs))


def target_dict(g: Gen):
    data = g.config() if g.chance(0.9) else g.value()
    return data, lambda: spec_outcome(lambda: ResNeXtSpec.from_dict(data))


def target_json(g: Gen):
    text = json_text(g)
    return text, lambda: spec_outcome(lambda: ResNeXtSpec.from_json(text))


INT_TEXTS = ["0", "1", "-1", "4", "32", "64", "4096", "4097", "2048", "7", "8", "1e3", "0x10",
             " 3", "", "١٢", "3_2", "+5", "9" * 4300, "9" * 4301, "nan", "3.0", "--1"]
DEPTH_TEXTS = ["3,4,6,3", "1", "", ",", "3,,4", "0,1", "129", "1,1,1,1,1,1,1,1,1", "3;4",
               "-1,2", "9" * 5000, "a,b"]
OPTIONS = {
    "--preset": sorted(PRESETS) + ["resnet9", ""], "--cardinality": INT_TEXTS,
    "-C": INT_TEXTS, "--width-per-group": INT_TEXTS, "-d": INT_TEXTS, "--depths": DEPTH_TEXTS,
    "--form": ["a", "b", "c", "d", ""], "--block": [*BLOCKS, "wide"],
    "--stem": [*STEMS, "deep"], "--stride-on": [*STRIDE_ON, "5x5"],
    "--num-classes": INT_TEXTS, "--in-channels": INT_TEXTS, "--image-size": INT_TEXTS,
    "--stem-width": INT_TEXTS,
}
FLAGS = ["--zero-init-residual", "--json", "-h", "--", "-", "--card", "--s", "--form=a", "-C4",
         "--depths=3,4", "--unknown", "info", "check", "-x", "--help"]
NOTHING_BUILT = ["-C", "4096", "-d", "4096"]  # appended to `check`: refused, never built


def make_configs() -> dict[str, str]:
    root = Path(tempfile.mkdtemp(prefix="fuzz-configs-"))
    files = {
        "valid.json": PRESETS["resnet18"].replace(form="a").to_json(),
        "preset.json": '{"preset": "resnext29_8x64d", "form": "b"}',
        "garbage.json": "not json at all {", "nan.json": '{"cardinality": NaN}',
        "deep.json": "[" * 100_000, "big.json": '{"form": "' + "a" * 200_000 + '"}',
        "empty.json": "", "unknown.json": '{"colour": "red"}',
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "latin1.json").write_bytes(b'{"form": "\xe9"}')
    (root / "a-directory").mkdir()
    paths = [str(root / name) for name in (*files, "latin1.json", "a-directory")]
    return {"root": str(root), "paths": paths + [str(root / "missing"), "", "bad\x00path", "/"]}


def cli_argv(g: Gen, configs, extra_options=None) -> list[str]:
    r = g.r
    argv = []
    options = {**OPTIONS, **(extra_options or {})}
    for _ in range(r.randrange(7)):
        kind = r.randrange(10)
        if kind < 6:
            name = r.choice(list(options))
            argv += [name, r.choice(options[name])]
        elif kind == 6:
            argv += ["--config", r.choice(configs["paths"])]
        elif kind < 9:
            argv.append(r.choice(FLAGS))
        else:
            argv.append(g.text(10))
    return argv


def target_cli(g: Gen, configs):
    r = g.r
    kind = r.randrange(10)
    if kind < 7:
        argv = ["info"] + cli_argv(g, configs)
    elif kind < 9:
        argv = ["check"] + cli_argv(g, configs, {"--batch": INT_TEXTS, "--seed": INT_TEXTS})
        argv += NOTHING_BUILT
    else:  # anything, but no command that would build or time a model
        argv = [t for t in cli_argv(g, configs) + [g.text(8)] if t not in ("check", "time")]
        r.shuffle(argv)
    return argv, lambda: cli_outcome(argv)


QUERY_KEYS = ["preset", "C", "d", "depths", "form", "block", "stem", "stride", "size",
              "classes", "in", "stem_width", "zero_init", "stage", "baseline", "__theme", "x", ""]


def target_share(g: Gen):
    from urllib.parse import quote

    r = g.r
    values = INT_TEXTS + DEPTH_TEXTS + sorted(PRESETS) + ["a", "b", "c", "true", "no", "1",
                                                          "0", "basic", "1x1", "%ff", "+",
                                                          "a" * 300]
    pairs = []
    for _ in range(r.randrange(7)):
        key = r.choice(QUERY_KEYS) if r.random() < 0.9 else g.text(6)
        value = r.choice(values) if r.random() < 0.7 else g.text(12)
        pairs.append((key, value))
    if r.random() < 0.8:
        query = r.choice(["&", ";"]).join(
            f"{quote(k, errors='surrogatepass')}={quote(v, ',%', errors='surrogatepass')}"
            for k, v in pairs)
        query = r.choice(["", "?"]) + query
    else:
        query = g.text(80) if r.random() < 0.7 else "C=" + "9" * r.choice([10, 1990, 2001])
    names = NAMES | {"link", "stage", "baseline"}
    return query, lambda: spec_outcome(lambda: share.from_query(query).spec, names)


def target_guard(g: Gen):
    r = g.r
    kwargs = {name: r.randint(*LIMITS[name]) for name in (
        "cardinality", "width_per_group", "num_classes", "in_channels", "image_size",
        "stem_width")}
    kwargs["depths"] = tuple(r.randint(*LIMITS["depth"]) for _ in range(r.randint(1, 8)))
    kwargs["form"] = r.choice(tuple(FORMS))
    kwargs["block"] = r.choice(tuple(BLOCKS))
    kwargs["stem"] = r.choice(STEMS)
    if r.random() < 0.5:  # mostly small: those that pass the limits
        for name in ("cardinality", "width_per_group", "image_size"):
            kwargs[name] = min(kwargs[name], r.choice([8, 64, 256]))
        kwargs["depths"] = tuple(min(d, 8) for d in kwargs["depths"])
    spec = ResNeXtSpec(**kwargs)
    batch = r.choice([1, 1, 1, 8, 8, 128, 4096, 4097, 0, -1, True, 2.0, None, 10**30])
    args = (batch, r.choice(["cpu", "cuda"]), r.choice(MODES), r.choice([1, 2, 4, 8]))

    def run():
        batch_size, device, mode, dtype_bytes = args
        limits = Limits.for_device(device)
        start = time.process_time()  # CPU time: the machine is shared
        try:
            e = check(spec, batch_size, limits, mode, dtype_bytes)
        except ResourceLimitError as exc:
            if exc.field not in ("params", "memory", "modules", "build_s", "macs") or (
                    "\n" in str(exc)):
                raise Failure(f"guard message: {str(exc)[:200]!r}") from None
            outcome = "refused"
        except SpecError as exc:
            if exc.field != "batch_size":
                raise
            outcome = "refused"
        else:
            if (e.params > limits.max_params or e.modules > limits.max_modules
                    or e.memory_bytes > limits.max_memory_bytes or e.macs > limits.max_macs):
                raise Failure(f"passed the guard over its limits: {e}")
            outcome = "valid"
        if time.process_time() - start > GUARD_S:
            raise Failure(f"guard took {time.process_time() - start:.3f} s of CPU")
        return outcome

    return (spec, args), run


# -- driver ---------------------------------------------------------------------------------
def short(value, n: int = 160) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= n else text[:n - 3] + "..."


def main_fuzz(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="stop after this long (default 60)")
    parser.add_argument("--cases", type=int, help="stop after this many cases in all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default="spec,dict,json,cli,share,guard",
                        help="comma-separated: spec, dict, json, cli, share, guard")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (None if args.cases else 60.0)
    targets = [t for t in args.targets.split(",") if t]
    if "share" in targets and share is None:
        print("builder/share.py is not there: skipping the share target")
        targets.remove("share")
    configs = make_configs()
    try:
        return _run(args, seconds, targets, configs)
    finally:
        shutil.rmtree(configs["root"], ignore_errors=True)


def _run(args, seconds, targets, configs) -> int:
    makers = {"spec": target_spec, "dict": target_dict, "json": target_json,
              "cli": lambda g: target_cli(g, configs), "share": target_share,
              "guard": target_guard}
    # cheap targets run more often; the CLI builds an argparse parser per case (~5 ms)
    weights = {"spec": 3, "dict": 3, "json": 4, "cli": 1, "share": 2, "guard": 2}
    unknown = set(targets) - set(makers)
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")
    g = Gen(args.seed)
    order = [t for t in targets for _ in range(weights[t])]
    counts = {t: Counter() for t in targets}
    failures: dict[tuple, tuple] = {}
    start = time.perf_counter()
    done = 0
    while True:
        if args.cases is not None and done >= args.cases:
            break
        if seconds is not None and time.perf_counter() - start >= seconds:
            break
        target = g.r.choice(order)
        case_input, run = makers[target](g)
        begin = time.process_time()
        try:
            outcome = run()
            if time.process_time() - begin > SLOW_S:
                raise Failure(f"took {time.process_time() - begin:.1f} s of CPU")
        except Exception as exc:  # a failure: anything but the contract
            outcome = "failures"
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            key = (target, type(exc).__name__, frame and (frame.filename, frame.lineno))
            if key not in failures:
                failures[key] = (short(case_input), f"{type(exc).__name__}: {exc}"[:300],
                                 "".join(traceback.format_exception(exc))[-1500:])
        counts[target][outcome] += 1
        counts[target]["cases"] += 1
        done += 1
    elapsed = time.perf_counter() - start

    print(f"fuzz: seed {args.seed}, {done:,} cases in {elapsed:.1f} s "
          f"({done / max(elapsed, 1e-9):,.0f}/s), python {sys.version.split()[0]}")
    print(f"{'target':<7} {'cases':>9} {'valid':>9} {'refused':>9} {'failures':>8}")
    total = Counter()
    for name in [*targets, "total"]:
        c = total if name == "total" else counts[name]
        if name != "total":
            total.update(c)
        print(f"{name:<7} {c['cases']:>9,} {c['valid']:>9,} {c['refused']:>9,} "
              f"{c['failures']:>8,}")
    if not failures:
        print("failures: none")
        return 0
    print(f"failures: {len(failures)} distinct")
    for (target, _, where), (case_input, message, trace) in failures.items():
        print(f"\n[{target}] {message}\n  input: {case_input}\n  at: {where}\n{trace}")
    return 1


if __name__ == "__main__":
    sys.exit(main_fuzz())
