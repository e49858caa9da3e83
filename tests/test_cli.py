"""python -m builder: info and check, exit codes, one-line errors, JSON output, the ranges
of the whole-number options, and --zero-init-residual both ways."""

import importlib
import json
import subprocess
import sys
from unittest import mock

import pytest

from builder import PRESETS, count_macs, count_params
from builder.cli import main, make_parser, spec_from_args


def run(*argv):
    """Run the CLI in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "builder", *argv], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_info_json_every_preset(name, capsys):
    assert main(["info", "--preset", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == count_params(PRESETS[name])
    assert data["macs"] == count_macs(PRESETS[name])
    assert data["flops"] == 2 * data["macs"]
    assert len(data["stages"]) == len(PRESETS[name].depths)
    assert sum(s["params"] for s in data["stages"]) < data["params"]


def test_info_table_in_a_fresh_interpreter():
    result = run("info", "--preset", "resnext50_32x4d")
    assert result.returncode == 0, result.stderr
    assert "25,028,904" in result.stdout
    assert "4.23 G" in result.stdout
    assert "conv5 (layer4)        3  1024       1024  32  2048    14->7  14,544,896" in \
        result.stdout


def test_overrides_apply_on_top_of_preset(capsys):
    assert main(["info", "--preset", "resnet50", "-C", "32", "-d", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 25_028_904
    assert main(["info", "--depths", "1,1", "--stem", "cifar", "--num-classes", "10",
                 "--image-size", "32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["spec"]["depths"] == [1, 1] and data["stages"][1]["size_out"] == 16


def test_config_file_then_overrides(tmp_path, capsys):
    config = tmp_path / "spec.json"
    config.write_text(PRESETS["resnext101_64x4d"].to_json())
    assert main(["info", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 83_455_272
    assert main(["info", "--config", str(config), "--form", "a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["form"] == "a"


@pytest.mark.parametrize("argv, fragment", [
    (["info", "--cardinality", "0"], "cardinality: 0 is not allowed"),
    (["info", "--cardinality", "many"], "argument --cardinality/-C: invalid int value"),
    (["info", "--depths", "3,x"], "depths: '3,x' is not allowed"),
    (["info", "--form", "z"], "invalid choice: 'z'"),
    (["info", "--preset", "resnet9"], "invalid choice: 'resnet9'"),
    (["info", "--config", "/nonexistent.json"], "--config: cannot read"),
    (["info", "--preset", "resnet18", "--stride-on", "1x1"], "stride_on: '1x1' is not allowed"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required"),
    (["check", "--batch", "0"], "--batch: 0 is not allowed"),
])
def test_bad_options_exit_2_with_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_bad_config_content_exits_2(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text('{"cardinality": 32, "colour": "red"}')
    result = run("info", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: config: 'colour' is not allowed; unknown key; "
                                     "allowed keys are preset, block, cardinality, depths, form, "
                                     "image_size, in_channels, num_classes, stem, stem_width, "
                                     "stride_on, width_per_group, zero_init_residual")


def test_check_prints_differences_and_exits_0():
    result = run("check", "--preset", "resnext29_8x64d", "--depths", "1,1", "-d", "4",
                 "--image-size", "16", "--form", "a", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {(r["form"], r["dtype"], r["mode"]) for r in rows} == {
        (f, d, m) for f in "bc" for d in ("float64", "float32") for m in ("eval", "train")}
    assert max(r["max_abs_diff"] for r in rows if r["dtype"] == "float64") <= 1e-10
    assert max(r["rel_error"] for r in rows if r["dtype"] == "float32") <= 1e-4
    assert all(r["ok"] and r["max_abs_diff"] <= r["bound"] for r in rows)


def test_check_prints_the_bound_and_why(capsys):
    """The table names each row's bound (measured from the reference's own rounding) and
    says why; before, it printed a fixed 'abs <= 1e-10' with no reason."""
    assert main(["check", "--preset", "resnet18", "--depths", "1", "--image-size", "16",
                 "-C", "2", "-d", "8"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "float" in line and "yes" in line]
    assert len(lines) == 8
    assert all("<= 8 x the reference's own float32 rounding (" in line for line in lines)
    assert sum(line.endswith(") x 2^-29") for line in lines) == 4
    assert out.splitlines()[-1].startswith("bound: the forms compute one function")


def test_check_exits_1_when_a_bound_is_exceeded(monkeypatch, capsys):
    convert_module = importlib.import_module("builder.convert")  # builder.convert is a function
    monkeypatch.setattr(convert_module, "BOUND_MULTIPLE", -1)  # nothing can meet this
    assert main(["check", "--preset", "resnet18", "--depths", "1", "--image-size", "16",
                 "-C", "2", "-d", "8"]) == 1
    out = capsys.readouterr().out
    assert " NO" in out and "form (c) converted" in out


# -- whole-number options: a range each, refused by the parser ---------------------------------
MAX_SEED = 2**63 - 1
HUGE = "9" * 23  # over 64 bits: torch's generators raised "Overflow when unpacking long long"
DIGITS = "9" * 4301  # over Python's 4300-digit limit for int()
TINY = ["--preset", "resnet18", "--depths", "1", "--image-size", "16", "-C", "2", "-d", "8"]


@pytest.mark.parametrize("argv, message", [
    (["check", "--seed", HUGE], f"--seed: {HUGE} is not allowed; expected a whole number from "
                                f"0 to {MAX_SEED}"),
    (["check", "--seed", str(MAX_SEED + 1)], f"--seed: {MAX_SEED + 1} is not allowed; expected "
                                             f"a whole number from 0 to {MAX_SEED}"),
    (["check", "--seed", "-1"], f"--seed: -1 is not allowed; expected a whole number from 0 to "
                                f"{MAX_SEED}"),
    (["time", "--seed", HUGE], f"--seed: {HUGE} is not allowed; expected a whole number from "
                               f"0 to {MAX_SEED}"),
    (["check", "--batch", "0"], "--batch: 0 is not allowed; expected a whole number from 1 to 256"),
    (["check", "--batch", HUGE], f"--batch: {HUGE} is not allowed; expected a whole number from "
                                 "1 to 256"),
    (["time", "--batch", HUGE], f"--batch: {HUGE} is not allowed; expected a whole number from "
                                "1 to 4096"),
    (["time", "--iters", "0"], "--iters: 0 is not allowed; expected a whole number from 1 to "
                               "100000"),
    (["time", "--iters", HUGE], f"--iters: {HUGE} is not allowed; expected a whole number from "
                                "1 to 100000"),
    (["time", "--warmup", "-1"], "--warmup: -1 is not allowed; expected a whole number from 0 "
                                 "to 10000"),
    (["time", "--warmup", "two"], "--warmup: 'two' is not allowed; expected a whole number from "
                                  "0 to 10000"),
    (["summary", "--batch", HUGE], f"--batch: {HUGE} is not allowed; expected a whole number "
                                   "from 1 to 4096"),
    (["summary", "--depth", HUGE], f"--depth: {HUGE} is not allowed; expected a whole number "
                                   "from 0 to 16"),
    (["check", "--seed", DIGITS], f"--seed: '{'9' * 36}... is not allowed; expected a whole "
                                  f"number from 0 to {MAX_SEED}"),
    (["check", "--seed", "9" * 50], f"--seed: {'9' * 37}... is not allowed; expected a whole "
                                    f"number from 0 to {MAX_SEED}"),
])
def test_whole_number_options_out_of_range_exit_2_with_one_line(argv, message, capsys):
    with mock.patch("builder.convert.check_equivalence",
                    side_effect=AssertionError("check ran")):
        assert main(argv + TINY) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"error: {message}\n")


@pytest.mark.parametrize("argv, start", [
    (["time", "--one-block", HUGE], f"error: block: stage {HUGE} is not allowed; "),
    (["graph", "--stage", HUGE], f"error: stage: {HUGE} is not allowed; "),
    (["graph", "--block-index", HUGE], f"error: block_index: {HUGE} is not allowed; "),
])
def test_stage_options_are_checked_against_the_spec_whatever_their_size(argv, start, capsys):
    """--one-block, --stage and --block-index have no range of their own: the spec's stages
    and blocks are their range, checked by builder.timing and builder.graph (their wording)."""
    assert main(argv + TINY) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(start) and err.count("\n") == 1 and err.endswith("\n")


def test_the_largest_seed_runs(capsys):
    """The end of the range is a seed torch takes (check seeds the batch with seed + 1)."""
    parser = make_parser()
    assert parser.parse_args(["check", "--seed", str(MAX_SEED)]).seed == MAX_SEED
    assert parser.parse_args(["time", "--seed", str(MAX_SEED)]).seed == MAX_SEED
    assert parser.parse_args(["check", "--seed", "0"]).seed == 0
    assert main(["check", "--seed", str(MAX_SEED), "--batch", "1", "--json"] + TINY) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and all(r["ok"] for r in rows)
    assert main(["time", "--seed", str(MAX_SEED), "--batch", "1", "--iters", "1", "--warmup",
                 "0", "--device", "cpu", "--json"] + TINY) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["seed"] == MAX_SEED


def test_the_largest_seed_in_a_real_process():
    """`python -m builder check --seed 99999999999999999999999` was a traceback."""
    result = run("check", "--seed", HUGE, *TINY)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"error: --seed: {HUGE} is not allowed; expected a whole number "
                             f"from 0 to {MAX_SEED}\n")


# -- --zero-init-residual / --no-zero-init-residual ---------------------------------------------
@pytest.mark.parametrize("in_config, flags, expected", [
    (True, [], True),
    (True, ["--no-zero-init-residual"], False),
    (False, ["--zero-init-residual"], True),
    (False, [], False),
    (True, ["--zero-init-residual"], True),
    (False, ["--no-zero-init-residual"], False),
])
def test_zero_init_residual_overrides_a_config_both_ways(in_config, flags, expected, tmp_path,
                                                         capsys):
    config = tmp_path / "spec.json"
    config.write_text(PRESETS["resnet50"].replace(zero_init_residual=in_config).to_json())
    assert main(["info", "--config", str(config), *flags, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["zero_init_residual"] is expected
    args = make_parser().parse_args(["info", "--config", str(config), *flags])
    assert spec_from_args(args) == PRESETS["resnet50"].replace(zero_init_residual=expected)


def test_zero_init_residual_on_a_preset(capsys):
    args = make_parser().parse_args(["info", "--preset", "resnet18"])
    assert args.zero_init_residual is None  # not given: the base spec's value stays
    assert main(["info", "--preset", "resnet18", "--zero-init-residual", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["zero_init_residual"] is True
    assert main(["info", "--preset", "resnet18", "--no-zero-init-residual", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["zero_init_residual"] is False
