"""python -m builder: info and check, exit codes, one-line errors, JSON output."""

import importlib
import json
import subprocess
import sys

import pytest

from builder import PRESETS, count_macs, count_params
from builder.cli import main


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


def test_check_exits_1_when_a_bound_is_exceeded(monkeypatch, capsys):
    convert_module = importlib.import_module("builder.convert")  # builder.convert is a function
    monkeypatch.setattr(convert_module, "BOUND_FLOAT64_ABS", -1.0)  # nothing can meet this
    assert main(["check", "--preset", "resnet18", "--depths", "1", "--image-size", "16",
                 "-C", "2", "-d", "8"]) == 1
    out = capsys.readouterr().out
    assert " NO" in out and "form (c) converted" in out
