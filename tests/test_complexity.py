"""Analytic counts: exact against torchvision's and the paper's numbers, equal to the built
model's parameters and to torchinfo's multiply-adds; match_width reproduces Table 2."""

import pytest
import torch

from builder import PRESETS, build_model, count_macs, count_params, match_width, network_counts
from builder.complexity import block_weight_params
from builder.network import stage_plans

# RESNEXT.md: torchvision's exact parameter counts and multiply-adds at 224.
REFERENCE = {
    "resnet50": (25_557_032, 4.09),
    "resnext50_32x4d": (25_028_904, 4.23),
    "resnext101_32x8d": (88_791_336, 16.41),
    "resnext101_64x4d": (83_455_272, 15.46),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_params_and_macs(name):
    params, gmacs = REFERENCE[name]
    assert count_params(PRESETS[name]) == params
    assert round(count_macs(PRESETS[name]) / 1e9, 2) == gmacs


@pytest.mark.parametrize("name, exact, paper_millions", [
    ("resnext29_8x64d", 34_426_698, 34.4), ("resnext29_16x64d", 68_155_210, 68.1)])
def test_resnext29_params_match_the_paper(name, exact, paper_millions):
    # the paper rounds to 0.1M; the exact count is that of the model built (every preset's
    # analytic count equals its model's: test_analytic_params_equal_built_model)
    assert count_params(PRESETS[name]) == exact
    assert abs(exact / 1e6 - paper_millions) < 0.1  # 68.155M: the paper writes 68.1M


@pytest.mark.parametrize("form", "abc")
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_analytic_params_equal_built_model(name, form):
    spec = PRESETS[name].replace(form=form)
    model = build_model(spec, device="meta")
    assert count_params(spec) == sum(p.numel() for p in model.parameters())


SMALL_SPECS = [
    PRESETS["resnext50_32x4d"].replace(depths=(1, 2), image_size=64),
    PRESETS["resnext50_32x4d"].replace(depths=(2, 1, 1), image_size=57, stride_on="1x1",
                                       cardinality=8, width_per_group=2),
    PRESETS["resnet18"].replace(image_size=40, cardinality=4, width_per_group=8),
    PRESETS["resnext29_8x64d"].replace(depths=(1, 1), width_per_group=4, image_size=16),
    PRESETS["resnet50"].replace(depths=(1,), image_size=33, in_channels=1, num_classes=7,
                                stem_width=24),
]


@pytest.mark.parametrize("form", "abc")
@pytest.mark.parametrize("spec", SMALL_SPECS, ids=lambda s: f"{s.name}-{s.image_size}")
def test_analytic_macs_equal_torchinfo(spec, form):
    torchinfo = pytest.importorskip("torchinfo", reason="torchinfo is not installed")
    spec = spec.replace(form=form)
    stats = torchinfo.summary(build_model(spec), input_size=(1, spec.in_channels,
                              spec.image_size, spec.image_size), verbose=0, device="cpu")
    assert stats.total_mult_adds == count_macs(spec)
    assert stats.total_params == count_params(spec)


@pytest.mark.parametrize("spec", SMALL_SPECS, ids=lambda s: f"{s.name}-{s.image_size}")
def test_stage_sizes_match_the_real_forward(spec):
    model = build_model(spec).eval()
    sizes = []
    hooks = [getattr(model, p.name).register_forward_hook(
        lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for p in stage_plans(spec)]
    with torch.no_grad():
        model(torch.randn(1, spec.in_channels, spec.image_size, spec.image_size))
    for hook in hooks:
        hook.remove()
    assert sizes == [(p.out_channels, p.size_out, p.size_out) for p in stage_plans(spec)]


def test_stage_table_resnext50():
    counts = network_counts(PRESETS["resnext50_32x4d"])
    assert [s.plan.width for s in counts.stages] == [128, 256, 512, 1024]
    assert [s.plan.out_channels for s in counts.stages] == [256, 512, 1024, 2048]
    assert [s.plan.size_out for s in counts.stages] == [56, 28, 14, 7]
    assert counts.stem.params + sum(s.total.params for s in counts.stages) + \
        counts.head.params == 25_028_904
    assert counts.total.flops == 2 * counts.macs


def test_paper_block_formula():
    # C * (in*d + 3*3*d*d + d*out) for the conv2 block: ~70k, as the ResNet bottleneck
    assert block_weight_params(1, 64, 256, 256) == 69_632
    assert block_weight_params(32, 4, 256, 256) == 70_144


@pytest.mark.parametrize("cardinality, d", [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)])
def test_match_width_reproduces_table_2(cardinality, d):
    assert match_width(cardinality) == d


def test_match_width_other_stages_and_references():
    # conv3: 512-d in/out, ResNet width 128 -> 32 paths of 8 (ResNeXt-50's conv3)
    assert match_width(32, in_channels=512, out_channels=512, reference_width=128) == 8
    # reference ResNeXt 32x4d block, at C=64: 64*(512*2 + 9*4) = 67,840 vs 70,144
    assert match_width(64, reference_cardinality=32, reference_width=4) == 2
    # first block of conv2, 64 in, 256 out: target 64*64 + 9*64*64 + 64*256 = 57,344;
    # C=2: d=41 gives 56,498 (846 under), d=42 gives 58,632 (1,288 over)
    assert match_width(2, in_channels=64, out_channels=256) == 41


def test_match_width_rejects_bad_cardinality():
    with pytest.raises(ValueError, match="^cardinality: 0 is not allowed"):
        match_width(0)
