"""builder.compare (pins, Table 2 sweep, paper errors) and builder.charts."""

import json

import pytest

from builder import PRESETS, ResNeXtSpec, count_params
from builder.charts import bars_svg
from builder.compare import (
    HEADERS,
    MAX_PINS,
    add_pins,
    charts_svg,
    load_pins,
    load_times,
    paper_error,
    pin,
    sweep,
    table,
)


def test_sweep_is_table_2():
    specs = sweep(PRESETS["resnet50"])
    assert [(s.cardinality, s.width_per_group) for s in specs] == [
        (1, 64), (2, 40), (4, 24), (8, 14), (32, 4)]
    assert specs[-1] == PRESETS["resnext50_32x4d"]
    params = [count_params(s) for s in specs]
    assert max(params) / min(params) < 1.03  # matched complexity: within 3%


@pytest.mark.parametrize("name, error", [
    ("resnet50", (23.9, "ImageNet top-1")), ("resnext50_32x4d", (22.2, "ImageNet top-1")),
    ("resnext101_64x4d", (20.4, "ImageNet top-1")), ("resnext29_8x64d", (3.65, "CIFAR-10")),
    ("resnet18", None), ("resnext101_32x8d", None)])
def test_paper_errors_only_for_networks_the_paper_trained(name, error):
    assert paper_error(PRESETS[name]) == error
    assert paper_error(PRESETS[name].replace(form="a")) == error  # same function
    assert paper_error(PRESETS[name].replace(image_size=160)) is None  # another crop


def test_pins_table_recomputes_numbers_and_keeps_times():
    times = {PRESETS["resnet18"].to_json(indent=None): {
        "median_ms": 3.25, "batch_size": 4, "device": "CPU: x"}}
    pins = add_pins([], [PRESETS["resnet18"], PRESETS["resnext50_32x4d"]], times)
    pins = add_pins(pins, [PRESETS["resnet18"]])  # pinned again: moves last, keeps its time
    rows = table(pins)
    assert rows["headers"] == HEADERS
    assert rows["data"] == [
        ["1", "ResNeXt-50 (32x4d)", "c", "25,028,904", "4.23 G", "–",
         "22.2% top-1 (Table 3)"],
        ["2", "ResNet-18", "c", "11,689,512", "1.81 G", "3.2 ms (batch 4, CPU: x)", "–"]]
    svg = charts_svg(pins)
    # the paper's error against C (ResNeXt-50 is Table 3's), params, multiply-adds, time
    assert svg.count("<svg") == 4 and "2. ResNet-18 (c)" in svg and "3.2 ms" in svg
    assert "22.2% (32 × 4d)" in svg


def test_untrusted_pins_are_validated():
    stored = [pin(PRESETS["resnet18"]),
              {"spec": {"cardinality": 0}},
              {"spec": {"cardinality": 8, "evil": 1}},
              {"spec": PRESETS["resnet34"].to_dict(), "time": {"median_ms": -1,
                                                               "batch_size": 1, "device": "x"}},
              "nonsense", {"no": "spec"}]
    pins = load_pins(json.dumps(stored))
    assert [ResNeXtSpec.from_dict(p["spec"]).name for p in pins] == ["ResNet-18", "ResNet-34"]
    assert pins[1]["time"] is None  # a negative time is dropped
    assert load_pins("not json") == [] and load_pins("x" * 70_000) == []
    many = [pin(PRESETS["resnet18"].replace(num_classes=n)) for n in range(1, 40)]
    assert len(load_pins(json.dumps(many))) == MAX_PINS


def test_bars_svg_scales_to_the_largest_value():
    svg = bars_svg("t", [("a", 10.0, "10"), ("b", 5.0, "5 <x>")])
    assert 'width="310.0"' in svg and 'width="155.0"' in svg
    assert "5 &lt;x&gt;" in svg and "<x>" not in svg


def test_load_times_keeps_only_valid_entries():
    good = {"median_ms": 12.5, "batch_size": 8, "device": "CPU: AMD EPYC"}
    text = json.dumps({"a": good, "b": {"median_ms": -1, "batch_size": 8, "device": "x"},
                       "c": "nonsense"})
    assert load_times(text) == {"a": good}
    for bad in ("[1, 2]", "{", "", None, 17, "[" * 100_000, json.dumps({"a": good}) + " " * 70_000):
        assert load_times(bad) == {}
