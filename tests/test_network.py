"""spec -> model: torchvision's keys and shapes for form (c), the paper's paths for (a) and
(b), output shapes, gradients, stride placement, stems, the basic block."""

import importlib.util
import json
import pathlib

import pytest
import torch
from torch import nn

from builder import PRESETS, build_model, convert, count_params, describe
from builder import blocks as B

GOLDEN = json.loads((pathlib.Path(__file__).parent / "golden" /
                     "torchvision_state_dicts.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN["models"]))
def test_form_c_has_torchvision_state_dict(name):
    """Keys and shapes equal torchvision's (golden file from scripts/torchvision_golden.py)."""
    expected = GOLDEN["models"][name]
    model = build_model(PRESETS[name], device="meta")
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["params"]


def _golden_script():
    path = pathlib.Path(__file__).parents[1] / "scripts" / "torchvision_golden.py"
    loader = importlib.util.spec_from_file_location("torchvision_golden", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)  # imports torch only: torchvision is imported in main()
    return module


GOLDEN_OUTPUTS = json.loads((pathlib.Path(__file__).parent / "golden" /
                             "torchvision_outputs.json").read_text())


@pytest.mark.parametrize("form", "cab")
@pytest.mark.parametrize("name", sorted(GOLDEN_OUTPUTS["models"]))
def test_outputs_equal_torchvisions(name, form):
    """With the same weights (set by a formula), our model gives torchvision's output: form (c)
    loads the weights with strict=True, forms (a) and (b) are converted from it. The golden
    outputs are torchvision's own, in float64 (scripts/torchvision_golden.py --write)."""
    golden = _golden_script()
    spec = PRESETS[name].replace(num_classes=GOLDEN_OUTPUTS["num_classes"])
    model = build_model(spec, dtype=torch.float64)
    model.load_state_dict(golden.deterministic_state(model), strict=True)
    if form != "c":
        model = convert(model, form)
    with torch.no_grad():
        got = model.eval()(golden.golden_batch())
    expected = torch.tensor(GOLDEN_OUTPUTS["models"][name], dtype=torch.float64)
    assert got.shape == expected.shape == (2, 10)
    assert expected.abs().max() > 0.1  # a real signal, not a vanished one
    assert (got - expected).abs().max().item() <= 1e-10


# Forms (a) and (b) of the 101-layer ResNeXts are left out: their blocks are the 50-layer
# one's with more of them (form (c) checks their depths), and a meta forward of their 8,000 to
# 15,000 modules takes 15-30 s each (batch norm's meta kernel runs through Python
# decompositions).
SHAPE_CASES = [(name, form) for name in sorted(PRESETS) for form in "abc"
               if form == "c" or not name.startswith("resnext101")]


@pytest.mark.parametrize("name, form", SHAPE_CASES)
def test_output_shape_every_preset_and_form(name, form):
    spec = PRESETS[name].replace(form=form)
    model = build_model(spec, device="meta")
    x = torch.empty(2, spec.in_channels, spec.image_size, spec.image_size, device="meta")
    assert tuple(model(x).shape) == (2, spec.num_classes)


def test_form_a_and_b_build_the_papers_paths():
    spec = PRESETS["resnext50_32x4d"]
    a = build_model(spec.replace(form="a"), device="meta")
    b = build_model(spec.replace(form="b"), device="meta")
    block_a, block_b = a.layer1[0], b.layer1[0]
    assert isinstance(block_a, B.AggregatedBottleneck) and len(block_a.paths) == 32
    path = block_a.paths[31]
    assert (path.conv1.in_channels, path.conv1.out_channels) == (64, 4)
    assert (path.conv2.in_channels, path.conv2.out_channels, path.conv2.groups) == (4, 4, 1)
    assert (path.conv3.in_channels, path.conv3.out_channels) == (4, 256)
    assert block_a.bn3.num_features == 256  # one BN on the aggregated sum
    assert isinstance(block_b, B.ConcatBottleneck) and len(block_b.paths) == 32
    assert block_b.paths[0].conv3 is None
    assert (block_b.conv3.in_channels, block_b.conv3.out_channels) == (128, 256)
    keys = set(a.state_dict())
    assert "layer4.2.paths.31.conv2.weight" in keys and "layer4.2.bn3.running_var" in keys
    assert a.layer4[0].paths[0].conv2.in_channels == 32  # d doubles each stage: 4, 8, 16, 32


def test_form_c_uses_grouped_3x3():
    model = build_model(PRESETS["resnext101_64x4d"], device="meta")
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(grouped) == 33 and {m.groups for m in grouped} == {64}
    assert model.layer3[22].conv2.weight.shape == (1024, 16, 3, 3)


@pytest.mark.parametrize("stride_on, conv1_stride, conv2_stride", [("3x3", 1, 2), ("1x1", 2, 1)])
def test_stride_position(stride_on, conv1_stride, conv2_stride):
    for form in "ac":
        spec = PRESETS["resnext50_32x4d"].replace(stride_on=stride_on, form=form)
        block = build_model(spec, device="meta").layer2[0]
        layer = block.paths[0] if form == "a" else block
        assert layer.conv1.stride == (conv1_stride,) * 2
        assert layer.conv2.stride == (conv2_stride,) * 2
        assert block.downsample[0].stride == (2, 2)


def test_cifar_stem():
    model = build_model(PRESETS["resnext29_8x64d"], device="meta")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.stage_names == ["layer1", "layer2", "layer3"]
    assert model.fc.out_features == 10
    assert model.layer1[0].conv2.groups == 8 and model.layer1[0].conv2.in_channels == 512


def test_basic_block_is_dense_and_says_so():
    spec = PRESETS["resnet18"].replace(cardinality=8, width_per_group=8)
    model = build_model(spec, device="meta")
    assert all(m.groups == 1 for m in model.modules() if isinstance(m, nn.Conv2d))
    assert model.layer1[0].conv1.out_channels == 64  # C*d = 8*8, one dense 3x3
    assert count_params(spec) == count_params(PRESETS["resnet18"])
    notes = " ".join(describe(spec))
    assert "dense block 64 wide" in notes and "grouping brings nothing" in notes
    paths = build_model(spec.replace(form="a"), device="meta").layer1[0]
    assert len(paths.paths) == 8 and paths.paths[0].conv1.out_channels == 8


def test_zero_init_residual():
    for form, last in (("c", "bn3"), ("a", "bn3")):
        model = build_model(PRESETS["resnext50_32x4d"].replace(zero_init_residual=True,
                                                                depths=(1, 1), form=form))
        assert all(getattr(m, last).weight.abs().sum() == 0 for m in model.layer1)
        assert model.bn1.weight.min() == 1  # only the blocks' last BNs start at zero
    basic = build_model(PRESETS["resnet18"].replace(zero_init_residual=True))
    assert basic.layer4[1].bn2.weight.abs().sum() == 0


SMALL = {
    "bottleneck": PRESETS["resnext50_32x4d"].replace(depths=(1, 1), cardinality=4,
                                                     width_per_group=4, image_size=32),
    "bottleneck-v1": PRESETS["resnext50_32x4d"].replace(depths=(1, 1), cardinality=4,
                                                        width_per_group=4, image_size=32,
                                                        stride_on="1x1"),
    "basic-cifar": PRESETS["resnet18"].replace(depths=(1, 1), cardinality=2, stem="cifar",
                                               image_size=16, num_classes=10),
}


@pytest.mark.parametrize("form", "abc")
@pytest.mark.parametrize("kind", sorted(SMALL))
def test_every_parameter_gets_a_gradient(kind, form):
    spec = SMALL[kind].replace(form=form)
    torch.manual_seed(0)
    model = build_model(spec).train()
    out = model(torch.randn(2, 3, spec.image_size, spec.image_size))
    assert out.shape == (2, spec.num_classes)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_build_model_rejects_non_spec():
    with pytest.raises(TypeError, match="expects a ResNeXtSpec"):
        build_model({"cardinality": 32})


@pytest.mark.parametrize("form", "abc")
@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "resnext29_8x64d"])
def test_every_parameter_of_a_real_preset_gets_a_gradient(name, form):
    """The full presets (every stage, every block), at a small image to keep it quick."""
    spec = PRESETS[name].replace(form=form, image_size=32 if spec_is_imagenet(name) else 16)
    torch.manual_seed(0)
    model = build_model(spec).train()
    out = model(torch.randn(2, 3, spec.image_size, spec.image_size))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []
    assert sum(p.numel() for p in model.parameters()) == count_params(spec)


def spec_is_imagenet(name: str) -> bool:
    return PRESETS[name].stem == "imagenet"
