"""builder.summary: torchinfo's summary on the meta device, with a groups column.

Totals are checked against the analytic counts of builder.complexity for every preset; the
rows against the model they describe; the meta-device summary against torchinfo on a real
CPU model. Everything runs on meta except that one comparison, on a small spec.
"""

import json
import sys

import pytest
import torch
import torchinfo

from builder import PRESETS, ResNeXtSpec, SpecError, build_model, network_counts, stage_plans
from builder.cli import main
from builder.summary import (
    SummaryResult,
    SummaryRow,
    SummaryUnavailable,
    rows_table,
    summarize,
)

SMALL = PRESETS["resnext50_32x4d"].replace(depths=(1, 2), image_size=64)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_totals_equal_analytic_counts_for_every_preset(name):
    spec = PRESETS[name]
    result = summarize(spec)
    counts = network_counts(spec)
    assert result.total_params == counts.params
    assert result.trainable_params == counts.params
    assert result.macs == counts.macs
    # torchinfo's memory estimates, float32: the input image and the parameters exactly
    assert result.params_bytes == 4 * counts.params
    assert result.input_bytes >= 4 * spec.in_channels * spec.image_size ** 2
    assert result.total_bytes == (result.input_bytes + result.forward_backward_bytes
                                  + result.params_bytes)
    # the table is torchinfo's own, with the same totals
    assert f"Total params: {counts.params:,}" in result.table
    assert f"Trainable params: {counts.params:,}" in result.table


def test_reference_numbers_of_the_paper_table():
    """RESNEXT.md: resnext50_32x4d has 25,028,904 parameters and 4.23 G multiply-adds."""
    result = summarize(PRESETS["resnext50_32x4d"], depth=1)
    assert result.total_params == 25_028_904
    assert round(result.macs / 1e9, 2) == 4.23


@pytest.mark.parametrize("form", "abc")
@pytest.mark.parametrize("block", ["bottleneck", "basic"])
def test_totals_equal_analytic_counts_for_every_form(block, form):
    spec = ResNeXtSpec(cardinality=4, width_per_group=8, depths=(2, 1, 1), block=block,
                       form=form, image_size=48, num_classes=7)
    result = summarize(spec, depth=2)
    counts = network_counts(spec)
    assert (result.total_params, result.macs) == (counts.params, counts.macs)


@pytest.mark.parametrize("spec", [SMALL, PRESETS["resnet18"].replace(form="a", image_size=64),
                                  PRESETS["resnext29_8x64d"].replace(form="b", depths=(1, 1))],
                         ids=["bottleneck-c", "basic-a", "cifar-b"])
@pytest.mark.parametrize("depth", range(0, 7))
def test_row_columns_sum_to_the_totals_at_every_depth(spec, depth):
    result = summarize(spec, depth=depth)
    assert sum(row.params for row in result.rows) == result.total_params
    assert sum(row.macs for row in result.rows) == result.macs
    assert max(row.depth for row in result.rows) == min(depth, _deepest(spec))
    assert result.rows[0] == SummaryRow(0, "", "ResNeXt", "", None, (1, spec.num_classes),
                                        0 if depth else result.total_params,
                                        0 if depth else result.macs)


def _deepest(spec):
    """Depth of the innermost layers: network 0, stage 1, block 2, layer 3, and the conv of a
    projection shortcut 4; in forms (a) and (b) the paths (a ModuleList, 3) hold path modules
    (4) whose layers are at 5."""
    return 4 if spec.form == "c" else 5


def test_rows_describe_the_model():
    spec = SMALL
    result = summarize(spec, depth=3)
    model = build_model(spec, device="meta")
    plans = stage_plans(spec)
    for row in result.rows:
        module = model.get_submodule(row.name)
        assert row.kind == type(module).__name__
        assert row.depth == (row.name.count(".") + 1 if row.name else 0)
        if isinstance(module, torch.nn.Conv2d):
            assert row.groups == module.groups
            assert row.kernel_size == f"{module.kernel_size[0]}x{module.kernel_size[1]}"
            assert row.params == module.weight.numel()
        else:
            assert row.groups is None
    by_name = {row.name: row for row in result.rows}
    # the point of the column: form (c)'s 3x3 has groups = C, the 1x1s are dense
    assert {by_name[f"layer{i}.0.conv2"].groups for i in (1, 2)} == {32}
    assert {by_name[f"layer{i}.0.conv1"].groups for i in (1, 2)} == {1}
    assert by_name["conv1"].kernel_size == "7x7"
    assert by_name["maxpool"].kernel_size == "3x3"
    assert by_name["fc"].kernel_size == ""
    for plan in plans:
        assert by_name[plan.name].output_shape == (1, plan.out_channels, plan.size_out,
                                                   plan.size_out)
    assert by_name["layer2.0.conv2"].output_shape == (1, 256, 8, 8)  # stride on the 3x3
    assert by_name["layer2.0.conv1"].output_shape == (1, 256, 16, 16)
    assert by_name["layer2.0.downsample"].params == 256 * 512 + 2 * 512


def test_form_a_rows_show_the_paths_as_dense_convolutions():
    spec = SMALL.replace(form="a", cardinality=4, width_per_group=16)
    result = summarize(spec, depth=5)
    convs = [row for row in result.rows if row.name.startswith("layer1.0.paths.")
             and row.kind == "Conv2d"]
    assert len(convs) == 4 * 3  # C paths of 1x1, 3x3, 1x1
    assert {row.groups for row in convs} == {1}
    assert [row.name for row in convs[:3]] == [
        "layer1.0.paths.0.conv1", "layer1.0.paths.0.conv2", "layer1.0.paths.0.conv3"]
    assert convs[1].output_shape == (1, 16, 16, 16)  # d = 16 channels per path


def test_stride_on_1x1_moves_the_downsampling():
    result = summarize(SMALL.replace(stride_on="1x1"), depth=3)
    by_name = {row.name: row for row in result.rows}
    assert by_name["layer2.0.conv1"].output_shape == (1, 256, 8, 8)
    assert by_name["layer2.0.conv2"].output_shape == (1, 256, 8, 8)
    assert result.macs == network_counts(SMALL.replace(stride_on="1x1")).macs


def test_batch_size_scales_macs_and_activations_not_params():
    one, four = summarize(SMALL, batch_size=1), summarize(SMALL, batch_size=4)
    assert four.total_params == one.total_params
    assert four.macs == 4 * one.macs
    assert four.forward_backward_bytes == 4 * one.forward_backward_bytes
    assert four.rows[0].output_shape == (4, 1000)


def test_meta_summary_equals_torchinfo_on_a_real_cpu_model():
    spec = PRESETS["resnext50_32x4d"].replace(depths=(1, 1), image_size=32, form="b",
                                              cardinality=4)
    ours = summarize(spec, depth=4)
    stats = torchinfo.summary(build_model(spec), input_size=(1, 3, 32, 32), device="cpu",
                              depth=4, mode="eval", verbose=0,
                              col_names=("kernel_size", "output_size", "num_params",
                                         "mult_adds"), row_settings=("var_names",))
    assert ours.table == str(stats)
    assert (ours.total_params, ours.macs, ours.input_bytes, ours.forward_backward_bytes,
            ours.params_bytes) == (stats.total_params, stats.total_mult_adds, stats.total_input,
                                   stats.total_output_bytes, stats.total_param_bytes)


def test_to_dict_is_json_and_complete():
    result = summarize(SMALL, depth=2)
    data = json.loads(json.dumps(result.to_dict()))
    assert ResNeXtSpec.from_dict(data["spec"]) == SMALL
    assert data["total_params"] == network_counts(SMALL).params
    assert data["macs"] == network_counts(SMALL).macs
    assert len(data["rows"]) == len(result.rows)
    assert data["rows"][1] == {"depth": 1, "name": "conv1", "kind": "Conv2d",
                               "kernel_size": "7x7", "groups": 1,
                               "output_shape": [1, 64, 32, 32], "params": 9408,
                               "macs": 9408 * 32 * 32}
    assert data["table"] == result.table
    assert isinstance(result, SummaryResult)


def test_rows_table_has_the_groups_column():
    text = rows_table(summarize(SMALL, depth=3))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "kind", "kernel", "groups", "output", "shape",
                                "params", "MACs"]
    conv2 = next(line for line in lines if line.strip().startswith("conv2"))
    assert conv2.split()[:4] == ["conv2", "Conv2d", "3x3", "32"]


@pytest.mark.parametrize("depth", [-1, 17, 2.0, True, "3"])
def test_bad_depth_is_a_spec_error(depth):
    with pytest.raises(SpecError, match="^depth: "):
        summarize(SMALL, depth=depth)


@pytest.mark.parametrize("batch_size", [0, 4097, 1.5])
def test_bad_batch_size_is_a_spec_error(batch_size):
    with pytest.raises(SpecError, match="^batch_size: "):
        summarize(SMALL, batch_size=batch_size)


def test_summarize_wants_a_spec():
    with pytest.raises(TypeError, match="ResNeXtSpec"):
        summarize({"cardinality": 32})


# -- python -m builder summary ------------------------------------------------------------------
def test_cli_prints_torchinfo_table(capsys):
    assert main(["summary", "--preset", "resnet18", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert out == summarize(PRESETS["resnet18"], depth=1).table + "\n"
    assert "Total params: 11,689,512" in out


def test_cli_json_and_rows(capsys):
    args = ["summary", "--preset", "resnext50_32x4d", "--depths", "1,2", "--image-size", "64"]
    assert main(args + ["--json", "--depth", "2", "--batch", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch_size"] == 2 and data["depth"] == 2
    assert data["macs"] == 2 * network_counts(SMALL).macs
    assert main(args + ["--rows"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (f"total params {network_counts(SMALL).params:,}   "
                                    f"multiply-adds {network_counts(SMALL).macs:,}")


@pytest.mark.parametrize("argv, message", [
    (["--depth", "99"], "error: depth: 99 is not allowed; expected a whole number from 0 to 16"),
    (["--batch", "0"], "error: --batch: 0 is not allowed; expected 1 or more"),
])
def test_cli_bad_options_exit_2(capsys, argv, message):
    assert main(["summary", "--preset", "resnet18"] + argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_without_torchinfo_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchinfo", None)  # `import torchinfo` now fails
    with pytest.raises(SummaryUnavailable, match="^the summary needs torchinfo: pip install "):
        summarize(SMALL)
    assert main(["summary", "--preset", "resnet18"]) == 1
    assert capsys.readouterr().err == ("error: the summary needs torchinfo: pip install "
                                       "torchinfo\n")
    assert main(["info", "--preset", "resnet18", "--json"]) == 0  # the rest works without it
    assert json.loads(capsys.readouterr().out)["params"] == 11_689_512
