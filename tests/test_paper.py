"""builder.paper: the paper's Tables 3, 4, 7 matched by architecture, its Table 1, the charts."""

import pytest

from builder import PRESETS, ResNeXtSpec
from builder.charts import points_svg
from builder.compare import sweep
from builder.paper import (
    PAPER_ROWS,
    block_shape,
    errors_text,
    paper_flops,
    rows_for,
    sweep_chart,
    table,
    table1,
    table3_chart,
    table4_chart,
)


def test_every_row_of_tables_3_4_7_is_there():
    tables = [row.table for row in PAPER_ROWS]
    assert tables.count("Table 3") == 10 and tables.count("Table 4") == 5
    assert tables.count("Table 7") == 6  # 3 networks x (CIFAR-10, CIFAR-100)
    assert len(table()["data"]) == 21


def test_sweep_of_resnext50_gets_all_five_table_3_errors():
    got = [errors_text(s) for s in sweep(PRESETS["resnet50"])]
    assert got == ["23.9% top-1 (Table 3)", "23.0% top-1 (Table 3)", "22.6% top-1 (Table 3)",
                   "22.3% top-1 (Table 3)", "22.2% top-1 (Table 3)"]
    got = [errors_text(s) for s in sweep(PRESETS["resnet101"])]
    assert got[1:] == ["21.7% top-1 (Table 3)", "21.4% top-1 (Table 3)",
                       "21.3% top-1 (Table 3)", "21.2% top-1 (Table 3)"]


@pytest.mark.parametrize("spec, labels", [
    # matched by architecture, whatever it is named or which form it is in
    (ResNeXtSpec(cardinality=1, width_per_group=100, depths=(3, 4, 23, 3), form="a"),
     ["Table 4: ResNet-101, wider, 1 × 100d"]),
    (ResNeXtSpec(cardinality=1, width_per_group=64, depths=(3, 24, 36, 3)),
     ["Table 4: ResNet-200 (deeper), 1 × 64d"]),
    (ResNeXtSpec(cardinality=2, width_per_group=64, depths=(3, 4, 23, 3), form="b"),
     ["Table 4: ResNeXt-101, 2 × 64d"]),
    (PRESETS["resnet101"], ["Table 3: ResNet-101, 1 × 64d",
                            "Table 4: ResNet-101 (baseline), 1 × 64d"]),
    (PRESETS["resnext101_64x4d"].replace(zero_init_residual=True),
     ["Table 4: ResNeXt-101, 64 × 4d"]),
    (PRESETS["resnext29_8x64d"], ["Table 7: ResNeXt-29, 8 × 64d"]),
    (PRESETS["resnext29_16x64d"].replace(num_classes=100), ["Table 7: ResNeXt-29, 16 × 64d"]),
    # not what the paper trained: another crop, the stride on the 1x1, another stem width
    (PRESETS["resnext50_32x4d"].replace(image_size=160), []),
    (PRESETS["resnext50_32x4d"].replace(stride_on="1x1"), []),
    (PRESETS["resnext50_32x4d"].replace(stem_width=32), []),
    (PRESETS["resnext101_32x8d"], []), (PRESETS["resnet18"], []),
])
def test_rows_are_matched_by_architecture(spec, labels):
    assert [row.label for row in rows_for(spec)] == labels


def test_errors_text_labels_each_table():
    assert errors_text(PRESETS["resnet101"]) == ("22.0% top-1 (Table 3); "
                                                 "22.0% top-1, 6.0% top-5 (Table 4)")
    assert errors_text(PRESETS["resnext29_8x64d"]) == "3.65% test (Table 7, CIFAR-10)"
    assert errors_text(PRESETS["resnext29_8x64d"].replace(num_classes=100)) == (
        "17.77% test (Table 7, CIFAR-100)")
    assert errors_text(PRESETS["resnet18"]) == "–"


def test_table_1_of_resnext50_is_the_papers():
    rows = table1(PRESETS["resnext50_32x4d"])
    assert rows["headers"] == ["stage", "output", "ResNeXt-50 (32x4d)"]
    assert rows["data"] == [
        ["conv1", "112×112", "7×7, 64, stride 2"],
        ["conv2", "56×56", "3×3 max pool, stride 2; [1×1, 128; 3×3, 128, C=32; 1×1, 256] × 3"],
        ["conv3", "28×28", "[1×1, 256; 3×3, 256, C=32; 1×1, 512] × 4"],
        ["conv4", "14×14", "[1×1, 512; 3×3, 512, C=32; 1×1, 1024] × 6"],
        ["conv5", "7×7", "[1×1, 1024; 3×3, 1024, C=32; 1×1, 2048] × 3"],
        ["", "1×1", "global average pool, 1000-d fc, softmax"],
        ["# params.", "", "25.0\u00a0×\u00a010⁶"],
        ["FLOPs (multiply-adds, as the paper counts them)", "", "4.2\u00a0×\u00a010⁹"]]
    # the paper's own figure
    assert table1(PRESETS["resnet50"])["data"][-1][-1] == "4.1\u00a0×\u00a010⁹"
    assert block_shape(PRESETS["resnet50"], 0) == "[1×1, 64; 3×3, 64; 1×1, 256] × 3"
    assert block_shape(PRESETS["resnet18"], 3) == "[3×3, 512; 3×3, 512] × 2"
    assert table1(PRESETS["resnext29_8x64d"])["data"][0] == ["conv1", "32×32",
                                                            "3×3, 64, stride 1"]
    assert paper_flops(4_228_000_000) == "4.2\u00a0×\u00a010⁹"
    # a small network's, by thousands, never "0.0 × 10⁹"
    assert [paper_flops(n) for n in (420_000_000, 99_000_000, 5_370_000, 12_300, 7)] == [
        "0.4\u00a0×\u00a010⁹", "99.0\u00a0×\u00a010⁶", "5.4\u00a0×\u00a010⁶",
        "12.3\u00a0×\u00a010³", "7.0\u00a0×\u00a010⁰"]


def test_charts_show_every_value_and_their_axes():
    svg = table3_chart()
    for text in ("23.9% (1×64d)", "22.2% (32×4d)", "21.2% (32×4d)", "cardinality C",
                 "top-1 error (%)", "ResNeXt-50", "ResNeXt-101"):
        assert text in svg
    assert svg.count("<circle") == 10
    svg = table4_chart()
    assert svg.count("<circle") == 5
    for text in ("deeper: ResNet-200", "wider: 1 × 100d", "more paths", "21.7% (1×64d)",
                 "21.3% (1×100d)", "20.4% (64×4d)", ">64<"):
        assert text in svg
    svg = sweep_chart(sweep(PRESETS["resnext50_32x4d"]))
    assert svg.count("<circle") == 5 and "22.3% (8 × 14d)" in svg
    assert sweep_chart([PRESETS["resnet18"]]) == ""


def test_points_svg_axis_spans_the_values():
    svg = points_svg("t", "x", "y", ["1", "2"], [("s", "#000", [(0, 21.2, "a"), (1, 23.9, "b")],
                                                  True)])
    assert ">21<" in svg and ">24<" in svg and ">20<" not in svg  # not from zero
    assert svg.count("<polyline") == 1
