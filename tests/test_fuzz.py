"""Bad input everywhere: property tests over the spec fields, the JSON config, the command
line, the share link and the resource guard. Every input ends in a valid spec or a SpecError
whose one-line message starts with the field it names; never another exception, never a
traceback. scripts/fuzz.py runs the same targets for far longer."""

import contextlib
import dataclasses
import io
import json
import math
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from builder import PRESETS, ResNeXtSpec, SpecError, share
from builder.cli import main
from builder.guards import MODES, Limits, ResourceLimitError, check, estimate
from builder.spec import BLOCKS, FORMS, LIMITS, MAX_JSON_BYTES, STEMS, STRIDE_ON

ROOT = Path(__file__).resolve().parents[1]
FIELDS = tuple(f.name for f in dataclasses.fields(ResNeXtSpec))
# what a SpecError may name: a spec field, a stage of depths, the config, the preset
NAMES = set(FIELDS) | {f"depths[{i}]" for i in range(LIMITS["stages"][1])} | {
    "config", "preset"}


def fuzz_settings(examples: int):
    """`examples` (a few thousand in all: ~30 s on one core); FUZZ_SCALE=10 for ten times."""
    examples = max(1, round(examples * float(os.environ.get("FUZZ_SCALE", "1"))))
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# -- strategies -----------------------------------------------------------------------------
# ints of over 4300 digits cannot even be repr'd (sys.int_info.default_max_str_digits): made
# by a map so that no strategy holds one
huge_ints = st.sampled_from([(10, 5000, 0), (-10, 5000, 0), (10, 4300, -1), (2, 63, 0),
                             (2, 64, -1), (-2, 63, -1), (10, 18, 0)]).map(
    lambda t: (abs(t[0]) ** t[1] + t[2]) * (1 if t[0] > 0 else -1))
ODD_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 3.0, 32.0]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), huge_ints,
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(ODD_FLOATS),
    st.text(max_size=20), st.binary(max_size=10), st.complex_numbers(),
    st.sampled_from(["a", "c", "3x3", "basic", "cifar", "32", "3,4,6,3", "", "\x00",
                     "\udcff", "a" * 5000, "resnet50"]),
)
any_value = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.tuples(children, children),
                               st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=6)


def _int_field(name):
    lo, hi = LIMITS[name]
    return st.one_of(st.integers(lo, min(hi, 256)), st.sampled_from([lo - 1, lo, hi, hi + 1]))


def _depths():
    lo, hi = LIMITS["depth"]
    depth = st.one_of(st.integers(lo, 6), st.sampled_from([lo - 1, hi, hi + 1]))
    return st.one_of(st.lists(depth, min_size=1, max_size=8),
                     st.lists(depth, min_size=0, max_size=10),
                     st.lists(depth, min_size=1, max_size=4).map(tuple))


VALID = {
    "cardinality": _int_field("cardinality"),
    "width_per_group": _int_field("width_per_group"),
    "depths": _depths(),
    "form": st.sampled_from(tuple(FORMS)),
    "block": st.sampled_from(tuple(BLOCKS)),
    "stem": st.sampled_from(STEMS),
    "stride_on": st.sampled_from(STRIDE_ON),
    "num_classes": _int_field("num_classes"),
    "in_channels": _int_field("in_channels"),
    "image_size": _int_field("image_size"),
    "stem_width": _int_field("stem_width"),
    "zero_init_residual": st.booleans(),
}
assert set(VALID) == set(FIELDS)


# values of the right kind (about half the examples are valid specs), then up to two fields
# that may be anything at all
spec_kwargs = st.builds(lambda good, bad: {**good, **bad},
                        st.fixed_dictionaries({}, optional=VALID),
                        st.dictionaries(st.sampled_from(FIELDS), any_value, max_size=2))
presets = st.one_of(st.sampled_from(sorted(PRESETS)), any_value)
config_dicts = st.builds(
    lambda known, preset, extra: {**known, **preset, **extra},
    spec_kwargs,
    st.one_of(st.just({}), presets.map(lambda p: {"preset": p})),
    st.one_of(st.just({}), st.just({}), st.dictionaries(st.text(max_size=8), any_value,
                                                         max_size=2)))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10))
json_values = st.recursive(
    json_scalars, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children,
                                                        max_size=3)), max_leaves=8)
json_field_value = {name: st.one_of(VALID[name].map(lambda v: list(v) if isinstance(
    v, tuple) else v), json_values) for name in FIELDS}
json_configs = st.builds(
    lambda known, preset: {**known, **preset},
    st.fixed_dictionaries({}, optional=json_field_value),
    st.one_of(st.just({}), st.sampled_from(sorted(PRESETS)).map(lambda p: {"preset": p}),
              json_values.map(lambda p: {"preset": p})))
TOKENS = ['{', '}', '[', ']', ',', ':', '"', '"cardinality"', '"depths"', '"form"', '"preset"',
          '"resnet18"', '"a"', '"c"', '1', '0', '-1', '4096', '4097', '3.5', '1e400', '-1e400',
          'NaN', 'Infinity', '-Infinity', 'null', 'true', 'false', ' ', '\n', '\\', '\\u0000',
          '"\\ud800"', '9' * 5000, '[' * 50, ']' * 50, '\ufeff', '//', '/*']
token_texts = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)


def _mutate(text: str, edits) -> str:
    for position, kind, char in edits:
        i = position % (len(text) + 1)
        if kind == 0:
            text = text[:i] + char + text[i:]
        elif kind == 1:
            text = text[:i] + text[i + 1:]
        else:
            text = text[:i] + char + text[i + 1:]
    return text


mutated_presets = st.builds(
    _mutate, st.sampled_from([p.replace(form=f).to_json(indent=i) for p in PRESETS.values()
                              for f, i in (("a", None), ("c", 2))]),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 2),
                       st.sampled_from(list('{}[],:"0123456789-.eE ntfaN\\') + ["\x00"])),
             min_size=1, max_size=4))
json_texts = st.one_of(json_configs.map(json.dumps), json_values.map(json.dumps),
                       token_texts, mutated_presets, st.text(max_size=60))
json_inputs = st.one_of(json_texts, json_texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                        st.binary(max_size=60), any_value)


# -- what every outcome must be -------------------------------------------------------------
def assert_spec_error(exc: SpecError, names=NAMES) -> None:
    text = str(exc)
    assert exc.field in names, text
    assert text.startswith(f"{exc.field}: "), text
    assert "\n" not in text and len(text) < 400, text


def assert_valid_spec(spec) -> None:
    """A spec that validation let through works everywhere downstream, without building."""
    assert isinstance(spec, ResNeXtSpec)
    assert ResNeXtSpec.from_json(spec.to_json()) == spec
    assert hash(spec) == hash(ResNeXtSpec.from_dict(spec.to_dict()))
    assert spec.name
    e = estimate(spec)
    assert e.params > 0 and e.modules > 0 and e.activation_bytes > 0
    try:
        check(spec)
    except ResourceLimitError as exc:
        assert exc.field in ("params", "memory", "modules", "build_s", "macs")
        assert str(exc).startswith(f"{exc.field}: ")
    if share is not None:
        assert share.from_query(share.to_query(spec)).spec == spec


def outcome(make, names=NAMES):
    try:
        spec = make()
    except SpecError as exc:
        assert_spec_error(exc, names)
        return None
    assert_valid_spec(spec)
    return spec


# -- spec fields ----------------------------------------------------------------------------
@fuzz_settings(400)
@given(spec_kwargs)
@example({"cardinality": 10**5000})
@example({"depths": [10**5000]})
@example({"depths": [[[[]]]]})
@example({"form": "\udcff"})
@example({"block": "basic", "stride_on": "1x1"})
@example({"image_size": math.nan})
@example({"cardinality": 4096, "width_per_group": 4096, "depths": [128] * 8, "form": "a"})
def test_spec_fields(kwargs):
    outcome(lambda: ResNeXtSpec(**kwargs))


@fuzz_settings(100)
@given(st.sampled_from(FIELDS), any_value)
def test_spec_replace_any_value(field, value):
    outcome(lambda: PRESETS["resnet18"].replace(**{field: value}))


def _deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_python_values():
    for value in (_deep(100_000), _deep(990)):
        outcome(lambda v=value: ResNeXtSpec(depths=(v,)))
        outcome(lambda v=value: ResNeXtSpec.from_dict({"form": v}))
        outcome(lambda v=value: ResNeXtSpec.from_dict(v))


# -- JSON config ----------------------------------------------------------------------------
@fuzz_settings(400)
@given(config_dicts)
def test_from_dict(data):
    outcome(lambda: ResNeXtSpec.from_dict(data))


@fuzz_settings(100)
@given(any_value)
def test_from_dict_not_a_dict(data):
    outcome(lambda: ResNeXtSpec.from_dict(data))


@fuzz_settings(550)
@given(json_inputs)
@example('{"cardinality": NaN}')
@example('{"depths": [Infinity]}')
@example('{"cardinality": 1e400}')
@example('{"cardinality": ' + "9" * 4300 + "}")
@example('{"cardinality": ' + "9" * 4301 + "}")
@example(b'{"form": "\xff"}')
@example("\ufeff{}")
@example('{"preset": "resnet18", "stride_on": "1x1"}')
def test_from_json(text):
    outcome(lambda: ResNeXtSpec.from_json(text))


NASTY_JSON = {
    "100000 brackets": "[" * 100_000,
    "60000 brackets": "[" * 60_000,
    "60000 braces": '{"a":' * 12_000,
    "closed 990 deep": "[" * 990 + "]" * 990,
    "990 deep in a field": '{"depths": ' + "[" * 990 + "]" * 990 + "}",
    "990 deep in form": '{"form": ' + "[" * 990 + "]" * 990 + "}",
    "long string": '{"form": "' + "a" * (MAX_JSON_BYTES - 20) + '"}',
    "too long": '{"form": "' + "a" * MAX_JSON_BYTES + '"}',
    "long key": '{"' + "k" * 60_000 + '": 1}',
    "many keys": "{" + ",".join(f'"k{i}": {i}' for i in range(5000)) + "}",
    "long list": '{"depths": [' + ",".join(["3"] * 20_000) + "]}",
    "nul": '{"form": "\\u0000"}',
    "lone surrogate": '{"form": "\\ud800"}',
    "non-utf-8": b'{"form": "\xc3\x28"}',
    "utf-16": '{"form": "c"}'.encode("utf-16"),
    "empty": "",
    "only spaces": "   \n\t",
}


@pytest.mark.parametrize("text", list(NASTY_JSON.values()), ids=list(NASTY_JSON))
def test_nasty_json(text):
    start = time.process_time()
    assert outcome(lambda: ResNeXtSpec.from_json(text)) is None
    assert time.process_time() - start < 2


# -- command line ---------------------------------------------------------------------------
CONFIG_NAMES = ["valid.json", "preset.json", "garbage.json", "nan.json", "deep.json", "big.json",
                "empty.json", "basic-1x1.json", "unknown.json", "latin1.json", "a-directory",
                "missing.json"]


@pytest.fixture(scope="module")
def config_files():
    root = Path(tempfile.mkdtemp(prefix="fuzz-configs-"))
    files = {
        "valid.json": PRESETS["resnet18"].replace(form="a").to_json(),
        "preset.json": '{"preset": "resnext29_8x64d", "form": "b"}',
        "garbage.json": "not json at all {",
        "nan.json": '{"cardinality": NaN}',
        "deep.json": "[" * 100_000,
        "big.json": '{"form": "' + "a" * 200_000 + '"}',
        "empty.json": "",
        "basic-1x1.json": '{"preset": "resnet18", "stride_on": "1x1"}',
        "unknown.json": '{"colour": "red"}',
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "latin1.json").write_bytes(b'{"form": "\xe9"}')
    (root / "a-directory").mkdir()
    paths = {name: str(root / name) for name in CONFIG_NAMES}
    yield {**paths, "": "", "bad\x00path": "bad\x00path", "/": "/"}
    shutil.rmtree(root)


INT_TEXTS = ["0", "1", "-1", "4", "32", "64", "4096", "4097", "2048", "7", "8", "1e3", "0x10",
             " 3", "3 ", "", "١٢", "3_2", "+5", "9" * 4300, "9" * 4301, "nan", "3.0", "--1"]
DEPTH_TEXTS = ["3,4,6,3", "1", "", ",", "3,,4", "0,1", "129", "1,1,1,1,1,1,1,1,1", "3;4",
               "3 , 4", "-1,2", "9" * 5000, "a,b", "1" + ",1" * 7]
OPTIONS = {
    "--preset": st.one_of(st.sampled_from(sorted(PRESETS)), st.sampled_from(["resnet9", ""])),
    "--cardinality": st.sampled_from(INT_TEXTS), "-C": st.sampled_from(INT_TEXTS),
    "--width-per-group": st.sampled_from(INT_TEXTS), "-d": st.sampled_from(INT_TEXTS),
    "--depths": st.sampled_from(DEPTH_TEXTS),
    "--form": st.sampled_from(["a", "b", "c", "d", "A", ""]),
    "--block": st.sampled_from([*BLOCKS, "wide"]),
    "--stem": st.sampled_from([*STEMS, "deep"]),
    "--stride-on": st.sampled_from([*STRIDE_ON, "5x5"]),
    "--num-classes": st.sampled_from(INT_TEXTS), "--in-channels": st.sampled_from(INT_TEXTS),
    "--image-size": st.sampled_from(INT_TEXTS), "--stem-width": st.sampled_from(INT_TEXTS),
}
FLAGS = ["--zero-init-residual", "--json", "-h", "--", "-", "--card", "--s", "--form=a",
         "-C4", "--depths=3,4", "--unknown", "info", "check", "-x"]
argv_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too


CONFIG = "<config>"  # replaced by the path of a file of config_files


def _options(values, max_size):
    option = st.one_of(
        *[st.tuples(st.just(name), value) for name, value in values.items()],
        st.tuples(st.just("--config"), st.sampled_from(CONFIG_NAMES + ["", "bad\x00path", "/"])
                  .map(lambda name: CONFIG + name)),
        st.sampled_from(FLAGS).map(lambda f: (f,)),
        argv_text.map(lambda t: (t,)))
    return st.lists(option, max_size=max_size).map(
        lambda options: [token for option in options for token in option])


def _with_paths(argv, config_files):
    return [config_files[t[len(CONFIG):]] if t.startswith(CONFIG) else t for t in argv]


info_options = _options(OPTIONS, 6)
check_options = _options({**OPTIONS, "--batch": st.sampled_from(INT_TEXTS),
                          "--seed": st.sampled_from(INT_TEXTS)}, 5)


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's -h prints the help and exits 0
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_cli_outcome(argv, code, out, err):
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    if code == 0:
        assert out and not err, (argv, err)


@fuzz_settings(300)
@given(info_options)
def test_cli_info(config_files, options):
    argv = ["info"] + _with_paths(options, config_files)
    assert_cli_outcome(argv, *run_cli(argv))


# appended to every `check`: whatever came before, nothing gets built
NOTHING_BUILT = ["-C", "4096", "-d", "4096"]


@fuzz_settings(100)
@given(check_options)
def test_cli_check_never_builds_a_huge_spec(config_files, options):
    argv = ["check"] + _with_paths(options, config_files) + NOTHING_BUILT
    start = time.process_time()
    code, out, err = run_cli(argv)
    assert_cli_outcome(argv, code, out, err)
    assert code in (0, 2) and time.process_time() - start < 5, (argv, err)


@fuzz_settings(150)
@given(st.lists(st.one_of(st.sampled_from(FLAGS + ["info", "check", "time", "--help"]),
                          argv_text), max_size=6))
@example(["-h"])  # was a traceback: a "%" in the help of `time`
@example([])
@example(["info", "--config", "bad\x00path"])  # was a traceback: ValueError from open()
@example(["info", "a\nb"])  # was a two-line message: argparse quotes arguments as they are
def test_cli_any_argv(argv):
    argv = [token for token in argv if token not in ("check", "time")]  # they build models
    code, out, err = run_cli(argv)
    assert_cli_outcome(argv, code, out, err)


@pytest.mark.parametrize("command", [None, "info", "check", "time", "graph", "summary",
                                     "export"])
def test_cli_help_of_every_command(command):
    code, out, err = run_cli(["-h"] if command is None else [command, "-h"])
    assert (code, err) == (0, "") and out.startswith("usage: python -m builder")


def test_cli_non_utf8_argv_in_a_real_process():
    """A real `python -m builder`: argv bytes that are not UTF-8, and a NUL-free path with
    them; exit 2 with a one-line message, no traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "builder", "info", b"--form", b"\xff\xfe", b"--config",
         b"/nonexistent/\xff.json"], capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith(b"error: ") and result.stderr.count(b"\n") == 1
    assert b"Traceback" not in result.stderr and result.stdout == b""


# -- share link -----------------------------------------------------------------------------
QUERY_KEYS = ["preset", "C", "d", "depths", "form", "block", "stem", "stride", "size",
              "classes", "in", "stem_width", "zero_init", "stage", "baseline", "__theme", "x", ""]
query_values = st.one_of(st.sampled_from(INT_TEXTS + DEPTH_TEXTS + sorted(PRESETS) + [
    "a", "b", "c", "true", "no", "yes", "1", "0", "basic", "cifar", "1x1", "%ff", "%00",
    "+", "a" * 300]), st.text(max_size=10))


def _query_names():
    return NAMES | {"link", "stage", "baseline"}


@fuzz_settings(300)
@given(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), query_values), max_size=6),
       st.sampled_from(["&", ";", "&&"]), st.booleans())
def test_share_query_pairs(pairs, separator, question_mark):
    from urllib.parse import quote

    query = separator.join(f"{quote(k)}={quote(v, safe=',%')}" for k, v in pairs)
    query = ("?" if question_mark else "") + query  # ";" does not separate: one long value
    outcome(lambda: share.from_query(query).spec, _query_names())
    outcome(lambda: share.from_query(dict(pairs)).spec, _query_names())


@fuzz_settings(200)
@given(st.one_of(st.text(max_size=80), st.text(string.printable, max_size=80),
                 st.sampled_from(["?" * 3000, "C=" + "9" * 2000, "depths=" + "1," * 900,
                                  "preset=resnet18&stride=1x1", "stage=99", "%" * 50])))
def test_share_query_text(query):
    outcome(lambda: share.from_query(query).spec, _query_names())


# -- resource guard -------------------------------------------------------------------------
valid_specs = st.builds(
    ResNeXtSpec,
    cardinality=st.integers(*LIMITS["cardinality"]),
    width_per_group=st.integers(*LIMITS["width_per_group"]),
    depths=st.lists(st.integers(*LIMITS["depth"]), min_size=1, max_size=8).map(tuple),
    form=st.sampled_from(tuple(FORMS)), block=st.just("bottleneck") | st.just("basic"),
    stem=st.sampled_from(STEMS), num_classes=st.integers(*LIMITS["num_classes"]),
    in_channels=st.integers(*LIMITS["in_channels"]),
    image_size=st.integers(*LIMITS["image_size"]),
    stem_width=st.integers(*LIMITS["stem_width"]))


@fuzz_settings(200)
@given(valid_specs, st.one_of(st.integers(1, 4096), any_value), st.sampled_from([1, 2, 4, 8]),
       st.sampled_from(MODES), st.sampled_from(["cpu", "cuda"]))
def test_guard_answers_in_milliseconds(spec, batch_size, dtype_bytes, mode, device):
    start = time.process_time()  # CPU time: the machine is shared
    try:
        e = check(spec, batch_size, Limits.for_device(device), mode, dtype_bytes)
    except ResourceLimitError as exc:
        assert exc.field in ("params", "memory", "modules", "build_s", "macs")
        assert str(exc).startswith(f"{exc.field}: ") and "\n" not in str(exc)
    except SpecError as exc:
        assert exc.field == "batch_size", exc
    else:
        limits = Limits.for_device(device)
        assert e.params <= limits.max_params and e.modules <= limits.max_modules
        assert e.memory_bytes <= limits.max_memory_bytes and e.macs <= limits.max_macs
    assert time.process_time() - start < 0.2  # ~1 ms; building takes seconds


@pytest.mark.parametrize("query", ["__theme=" + "x" * 201, "%0Aevil%0A=" + "x" * 201,
                                   "preset=resnet50&utm_source=" + "y" * 1500])
def test_share_ignores_unknown_keys_whatever_their_value(query):
    """A key the link does not know is ignored, however long its value: the link still gives
    the spec of its known keys (here the default, or resnet50)."""
    expected = PRESETS["resnet50"] if query.startswith("preset=") else ResNeXtSpec()
    assert share.from_query(query).spec == expected
