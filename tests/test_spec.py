"""The spec: validation messages name the field, JSON round trip, presets."""

import json

import pytest

from builder import PRESETS, ResNeXtSpec, SpecError, get_preset


def test_defaults_are_resnext50_32x4d():
    assert ResNeXtSpec() == PRESETS["resnext50_32x4d"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip_every_preset_and_form(name):
    for form in "abc":
        spec = PRESETS[name].replace(form=form)
        text = spec.to_json()
        assert ResNeXtSpec.from_json(text) == spec
        assert json.loads(text)["depths"] == list(spec.depths)


def test_spec_is_hashable_and_frozen():
    spec = ResNeXtSpec()
    assert {spec: 1}[ResNeXtSpec()] == 1
    with pytest.raises(AttributeError):
        spec.cardinality = 2


def test_depths_list_becomes_tuple():
    assert ResNeXtSpec(depths=[1, 2]).depths == (1, 2)


@pytest.mark.parametrize("field, value, allowed", [
    ("cardinality", 0, "from 1 to 4096"),
    ("cardinality", 4097, "from 1 to 4096"),
    ("cardinality", 2.0, "whole number"),
    ("cardinality", True, "whole number"),
    ("width_per_group", -4, "from 1 to 4096"),
    ("width_per_group", "4", "whole number"),
    ("depths", (), "1 to 8 stages"),
    ("depths", (1,) * 9, "1 to 8 stages"),
    ("depths", "3,4", "list of whole numbers"),
    ("form", "d", "'a', 'b', 'c'"),
    ("block", "wide", "'bottleneck', 'basic'"),
    ("stem", "deep", "'imagenet', 'cifar'"),
    ("stride_on", "5x5", "'3x3', '1x1'"),
    ("num_classes", 0, "from 1 to 100000"),
    ("in_channels", 65, "from 1 to 64"),
    ("image_size", 7, "from 8 to 2048"),
    ("stem_width", 0, "from 1 to 1024"),
    ("zero_init_residual", 1, "true or false"),
])
def test_invalid_field_message_names_field_value_and_allowed(field, value, allowed):
    with pytest.raises(SpecError) as info:
        ResNeXtSpec(**{field: value})
    message = str(info.value)
    assert message.startswith(f"{field}: {value!r} is not allowed")
    assert allowed in message
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_bad_stage_depth_names_the_stage():
    with pytest.raises(SpecError, match=r"^depths\[2\]: 0 is not allowed"):
        ResNeXtSpec(depths=(3, 4, 0, 3))


def test_basic_block_refuses_stride_on_1x1():
    with pytest.raises(SpecError, match="stride_on: '1x1' is not allowed; a basic block"):
        ResNeXtSpec(block="basic", stride_on="1x1")


@pytest.mark.parametrize("text, field, fragment", [
    ('{"cardinality": 32, "colour": "red"}', "config", "unknown key"),
    ('{"cardinality": "32"}', "cardinality", "whole number"),
    ('{"cardinality": 3.5}', "cardinality", "whole number"),
    ('{"cardinality": NaN}', "config", "NaN"),
    ('{"width_per_group": Infinity}', "config", "finite"),
    ('{"depths": "3,4,6,3"}', "depths", "list of whole numbers"),
    ('{"depths": [3, 4, -1]}', "depths[2]", "from 1 to 128"),
    ('{"cardinality": 100000000000000000000000}', "cardinality", "from 1 to 4096"),
    ('[1, 2, 3]', "config", "JSON object"),
    ('{"cardinality": 32', "config", "valid JSON"),
    ('__import__("os").system("true")', "config", "valid JSON"),
    ('{"preset": "resnet9000"}', "preset", "'resnet18'"),
    ("[" * 100000 + "]" * 100000, "config", None),
])
def test_from_json_rejects_with_field_message(text, field, fragment):
    with pytest.raises(SpecError) as info:
        ResNeXtSpec.from_json(text)
    assert str(info.value).startswith(f"{field}: ")
    if fragment:
        assert fragment in str(info.value)


def test_from_json_caps_size():
    with pytest.raises(SpecError, match="at most 65536 characters"):
        ResNeXtSpec.from_json('{"form": "' + "c" * 70000 + '"}')


def test_from_json_partial_config_takes_preset_and_overrides():
    spec = ResNeXtSpec.from_json('{"preset": "resnet50", "cardinality": 32, "width_per_group": 4}')
    assert spec == PRESETS["resnext50_32x4d"]
    assert ResNeXtSpec.from_json(b'{"form": "a"}') == ResNeXtSpec(form="a")


def test_get_preset_unknown_name():
    with pytest.raises(SpecError, match="^preset: 'resnet9' is not allowed"):
        get_preset("resnet9")


@pytest.mark.parametrize("name, expected", [
    ("resnext50_32x4d", "ResNeXt-50 (32x4d)"), ("resnet18", "ResNet-18"),
    ("resnet152", "ResNet-152"), ("resnext29_8x64d", "ResNeXt-29 (8x64d)"),
    ("resnext101_64x4d", "ResNeXt-101 (64x4d)"), ("wide_resnet50_2", "ResNet-50 (width 128)"),
])
def test_names_in_the_papers_style(name, expected):
    assert PRESETS[name].name == expected
