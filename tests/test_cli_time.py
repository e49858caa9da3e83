"""python -m builder time: timm's benchmark names as aliases, and --csv."""

import csv
import json

import pytest
import torch

from builder import timing
from builder.cli import main, make_parser
from builder.cli import time as time_cli

TINY = ["--depths", "1", "--cardinality", "2", "--width-per-group", "2", "--image-size", "32",
        "--batch", "1"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def settings(*argv):
    args = make_parser().parse_args(["time", "--device", "cpu", *argv])
    return time_cli.settings_from_args(args), args


@pytest.mark.parametrize("alias, long", [
    (["-b", "4"], ["--batch", "4"]),
    (["--batch-size", "4"], ["--batch", "4"]),
    (["--precision", "bf16"], ["--dtype", "bf16"]),
    (["--precision", "bfloat16"], ["--dtype", "bf16"]),
    (["--precision", "amp_bfloat16"], ["--dtype", "bf16"]),
    (["--precision", "float16"], ["--dtype", "fp16"]),
    (["--precision", "amp"], ["--dtype", "fp16"]),
    (["--precision", "float32"], ["--dtype", "fp32"]),
    (["--num-warm-iter", "3"], ["--warmup", "3"]),
    (["--num-bench-iter", "7"], ["--iters", "7"]),
])
def test_each_timm_alias_gives_the_same_settings_as_the_long_name(alias, long):
    assert settings(*alias)[0] == settings(*long)[0]


def test_img_size_overrides_the_spec_as_image_size_does():
    from builder.cli import spec_from_args

    _, by_alias = settings("--img-size", "48")
    _, by_name = settings("--image-size", "48")
    assert spec_from_args(by_alias) == spec_from_args(by_name)
    assert spec_from_args(by_alias).image_size == 48
    _, unset = settings("--image-size", "40")  # the alias, absent, leaves it alone
    assert spec_from_args(unset).image_size == 40


def test_an_alias_keeps_the_checks_of_its_long_name(capsys):
    assert main(["time", "--num-bench-iter", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --num-bench-iter: 0 is not allowed") and err.count("\n") == 1
    assert main(["time", "--precision", "fp8"]) == 2
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def test_csv_holds_the_numbers_of_the_json(tmp_path, capsys):
    path = tmp_path / "times.csv"
    code = main(["time", *TINY, "--device", "cpu", "--warmup", "0", "--iters", "1", "--json",
                 "--csv", str(path)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, values = rows[0], rows[1:]
    assert header[:5] == ["model", "infer_samples_per_sec", "infer_step_time_ms",
                          "infer_batch_size", "infer_img_size"]
    assert len(values) == 1
    row = dict(zip(header, values[0], strict=True))
    assert row["model"] == data["name"]
    assert float(row["infer_samples_per_sec"]) == data["images_per_s"]
    assert float(row["infer_step_time_ms"]) == float(row["median_ms"]) == data["median_ms"]
    assert int(row["infer_batch_size"]) == data["batch_size"] == 1
    assert int(row["infer_img_size"]) == data["image_size"] == 32
    assert float(row["tflops"]) == data["tflops"]
    assert int(row["macs_per_image"]) == data["macs_per_image"]
    assert (row["dtype"], row["device"], row["mode"]) == ("fp32", "cpu", "inference")
    assert (int(row["warmup"]), int(row["iters"])) == (0, 1)


def test_csv_of_the_forms_has_a_row_each(tmp_path, capsys):
    path = tmp_path / "forms.csv"
    assert main(["time", *TINY, "--device", "cpu", "--warmup", "0", "--iters", "1", "--forms",
                 "--csv", str(path)]) == 0
    capsys.readouterr()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"][-3:] for r in rows] == ["(a)", "(b)", "(c)"]


@pytest.mark.parametrize("where", ["missing/folder/t.csv", "."])
def test_an_unwritable_csv_exits_2_with_one_line_before_running(tmp_path, capsys, monkeypatch,
                                                                 where):
    def no_timing(*args, **kwargs):
        raise AssertionError("timed before the path was checked")

    monkeypatch.setattr(timing, "time_model", no_timing)  # builder.cli.time imports it late
    path = tmp_path / where
    assert main(["time", *TINY, "--device", "cpu", "--csv", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --csv: cannot write ") and err.count("\n") == 1
