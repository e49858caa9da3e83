"""builder.summary: torchinfo's summary on the meta device, with a groups column.

Totals are checked against the analytic counts of builder.complexity for every preset; the
rows against the model they describe. The output shapes that summary.py computes itself
(`_ShapeOnly`, instead of torch's meta kernels) are checked twice: the tables and rows equal
torchinfo's on real CPU models of every block type, form, stem and stride at small size, and
torchinfo's on the meta device with torch's own meta kernels for every preset (form (c), and
forms (a) and (b) where they are quick) at full size.
"""

import contextlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchinfo

from builder import PRESETS, ResNeXtSpec, SpecError, build_model, network_counts, stage_plans
from builder import summary as summary_module
from builder.cli import main
from builder.summary import (
    SummaryResult,
    SummaryRow,
    SummaryUnavailable,
    _ShapeOnly,
    rows_table,
    summarize,
)

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("kernel_size", "output_size", "num_params", "mult_adds")

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


def _torchinfo(model, spec, device, depth, batch_size=1):
    size = spec.image_size
    return torchinfo.summary(model, input_size=(batch_size, spec.in_channels, size, size),
                             device=device, depth=depth, mode="eval", verbose=0,
                             col_names=COLUMNS, row_settings=("var_names",))


def _same_as(ours: SummaryResult, stats, model) -> None:
    """Our result is torchinfo's `stats` of `model`: table, rows and totals."""
    assert ours.table == str(stats)
    names = {id(module): name for name, module in model.named_modules()}
    rows = [summary_module._row(info, names[id(info.module)], ours.depth)
            for info in stats.summary_list if info.depth <= ours.depth]
    assert ours.rows == rows
    assert (ours.total_params, ours.macs, ours.input_bytes, ours.forward_backward_bytes,
            ours.params_bytes) == (stats.total_params, stats.total_mult_adds, stats.total_input,
                                   stats.total_output_bytes, stats.total_param_bytes)


# every block type and form; the CIFAR stem (no max-pool); the stride on the 1x1; odd sizes
# (the windows' rounding); a batch of 3
CPU_SPECS = [
    ResNeXtSpec(block=block, form=form, cardinality=4, width_per_group=4, depths=(1, 2),
                image_size=33, num_classes=7, stem_width=16)
    for block, form in itertools.product(("bottleneck", "basic"), "abc")] + [
    ResNeXtSpec(form=form, cardinality=2, width_per_group=8, depths=(1, 1, 1), stem="cifar",
                image_size=15, num_classes=10, in_channels=1) for form in "abc"] + [
    ResNeXtSpec(form=form, cardinality=4, width_per_group=2, depths=(2, 1), stride_on="1x1",
                image_size=40, stem_width=8) for form in "abc"]


@pytest.mark.parametrize("spec", CPU_SPECS, ids=lambda s: f"{s.block}-{s.form}-{s.stem}-"
                         f"{s.stride_on}-{s.image_size}")
def test_meta_summary_equals_torchinfo_on_a_real_cpu_model(spec):
    depth = 5  # every layer, paths included
    batch_size = 3 if spec.stem == "cifar" else 1
    model = build_model(spec)
    stats = _torchinfo(model, spec, "cpu", depth, batch_size)
    _same_as(summarize(spec, depth=depth, batch_size=batch_size), stats, model)


@pytest.mark.parametrize("form", "ab")
def test_forms_a_and_b_walk_one_path_and_list_all_c(form):
    """torchinfo walks one path per block (C = 32 would be 32x the module calls); the C - 1
    others are listed from it. Table, rows and totals equal torchinfo's walk of the whole
    ResNeXt-50 (32x4d), every path built, at depth 3 (the page's) and 5 (every layer)."""
    spec = PRESETS["resnext50_32x4d"].replace(form=form)
    walked, first = summary_module._one_path_model(spec)
    assert len(first) == sum(spec.depths) == 16
    assert all(len(m.paths) == 1 for m in walked.modules() if hasattr(m, "paths"))
    model = build_model(spec, device="meta")
    assert sum(len(m.paths) for m in model.modules() if hasattr(m, "paths")) == 16 * 32
    for depth in (3, 5):
        with _ShapeOnly():
            stats = _torchinfo(model, spec, "meta", depth)
        _same_as(summarize(spec, depth=depth), stats, model)


# forms (a), (b) only where they build and run quickly on meta (C <= 8, up to 16 blocks): torch's
# meta batch norm runs through Python, seconds per thousand modules
META_CASES = [(name, form) for name, form in itertools.product(sorted(PRESETS), "abc")
              if form == "c" or (PRESETS[name].cardinality <= 8
                                 and sum(PRESETS[name].depths) <= 16)]


@pytest.mark.parametrize("name, form", META_CASES)
def test_shape_only_equals_torch_meta_kernels_for_every_preset(name, form, monkeypatch):
    """The full networks: torchinfo on the meta device with torch's own meta kernels (the
    slow path `_ShapeOnly` avoids) gives the same table, rows and totals."""
    spec = PRESETS[name].replace(form=form)
    ours = summarize(spec, depth=5)
    monkeypatch.setattr(summary_module, "_ShapeOnly", contextlib.nullcontext)
    model = build_model(spec, device="meta")
    _same_as(ours, _torchinfo(model, spec, "meta", 5), model)


def test_shape_only_leaves_other_calls_to_torch():
    """Calls it does not compute itself go to torch, with torch's result: "same" padding, ceil
    mode, broadcasting, cat along another dimension, a CPU tensor."""
    x = torch.empty(2, 4, 9, 9, device="meta")
    w = torch.empty(6, 4, 3, 3, device="meta")
    F = torch.nn.functional
    with _ShapeOnly():
        assert F.conv2d(x, w, padding="same").shape == (2, 6, 9, 9)
        assert F.conv2d(x, w, stride=2, padding=1).shape == (2, 6, 5, 5)
        assert F.conv2d(x, w, dilation=2).shape == (2, 6, 5, 5)
        assert F.max_pool2d(x, 2, ceil_mode=True).shape == (2, 4, 5, 5)
        assert F.max_pool2d(x, 3, 2, 1).shape == (2, 4, 5, 5)
        assert F.adaptive_avg_pool2d(x, (1, 3)).shape == (2, 4, 1, 3)
        assert (x + torch.empty(4, 1, 1, device="meta")).shape == (2, 4, 9, 9)
        assert (0 + x).shape == (2, 4, 9, 9) and (x + x).dtype == torch.float32
        assert torch.cat([x, x], dim=0).shape == (4, 4, 9, 9)
        assert torch.cat([x, x], dim=1).shape == (2, 8, 9, 9)
        assert F.linear(torch.empty(5, 3, device="meta"), torch.empty(2, 3, device="meta")
                        ).shape == (5, 2)
        cpu = torch.ones(1, 1, 3, 3)
        assert torch.equal(F.conv2d(cpu, torch.ones(1, 1, 3, 3)), torch.full((1, 1, 1, 1), 9.0))
        assert torch.equal(cpu + cpu, torch.full((1, 1, 3, 3), 2.0))
        # what torch refuses, it still refuses: an image smaller than the kernel
        with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input"):
            F.conv2d(torch.empty(1, 4, 2, 2, device="meta"), w)


def test_a_summary_imports_neither_dynamo_nor_sympy():
    """What made the first summary in a process slow: torch's meta kernels are Python
    references, and the first of them imports sympy and torch._dynamo. In a fresh process,
    the summaries of every form leave both unimported."""
    code = ("import sys\n"
            "from builder import PRESETS\n"
            "from builder.summary import summarize\n"
            "for form in 'abc':\n"
            "    summarize(PRESETS['resnext50_32x4d'].replace(form=form, depths=(1, 1)))\n"
            "summarize(PRESETS['resnet18'].replace(form='b'))\n"
            "summarize(PRESETS['resnext29_8x64d'])\n"
            "summarize(PRESETS['resnext101_64x4d'], batch_size=2)\n"
            "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


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
    (["--depth", "99"], "error: --depth: 99 is not allowed; expected a whole number from 0 to "
                        "16"),
    (["--depth", "-1"], "error: --depth: -1 is not allowed; expected a whole number from 0 to "
                        "16"),
    (["--batch", "0"], "error: --batch: 0 is not allowed; expected a whole number from 1 to "
                       "4096"),
    (["--batch", "4097"], "error: --batch: 4097 is not allowed; expected a whole number from 1 "
                          "to 4096"),
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
