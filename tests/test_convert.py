"""convert(): the same function in another form, in eval and train mode, float64 and float32."""

import pytest
import torch

from builder import PRESETS, build_model, check_equivalence, convert, randomize_
from builder.convert import BOUND_FLOAT32_REL, BOUND_FLOAT64_ABS, dense_state

SPECS = {
    "resnext-bottleneck": PRESETS["resnext50_32x4d"].replace(depths=(1, 1), cardinality=8,
                                                             width_per_group=2, image_size=32),
    "resnext-stride-1x1": PRESETS["resnext50_32x4d"].replace(depths=(2, 1), cardinality=4,
                                                             width_per_group=4, image_size=32,
                                                             stride_on="1x1"),
    "resnext29-cifar": PRESETS["resnext29_8x64d"].replace(depths=(1, 1), width_per_group=4,
                                                          image_size=16),
    "basic": PRESETS["resnet18"].replace(depths=(1, 1), cardinality=4, width_per_group=16,
                                         image_size=32),
}


@pytest.mark.parametrize("source_form", "abc")
@pytest.mark.parametrize("name", sorted(SPECS))
def test_forms_agree_in_both_modes_and_dtypes(name, source_form):
    rows = check_equivalence(SPECS[name].replace(form=source_form), batch_size=4)
    assert len(rows) == 2 * 2 * 2  # two other forms x two dtypes x two modes
    for row in rows:
        if row["dtype"] == "float64":
            assert row["max_abs_diff"] <= BOUND_FLOAT64_ABS, row
        else:
            assert row["rel_error"] <= BOUND_FLOAT32_REL, row
        assert row["ok"]


def test_conversion_copies_running_statistics_and_weights():
    spec = SPECS["resnext-bottleneck"].replace(form="c")
    source = randomize_(build_model(spec), seed=3)
    a = convert(source, "a")
    block_c, block_a = source.layer2[0], a.layer2[0]
    # path i holds channels i*d .. (i+1)*d of form (c)'s first two layers
    d = block_c.conv1.out_channels // 8
    assert torch.equal(block_a.paths[5].bn1.running_mean, block_c.bn1.running_mean[5 * d:6 * d])
    assert torch.equal(block_a.paths[5].conv2.weight, block_c.conv2.weight[5 * d:6 * d])
    assert torch.equal(block_a.paths[5].conv3.weight, block_c.conv3.weight[:, 5 * d:6 * d])
    assert torch.equal(block_a.bn3.running_var, block_c.bn3.running_var)
    assert torch.equal(a.fc.weight, source.fc.weight)
    # and back: the round trip is exact
    back = convert(a, "c")
    for key, value in source.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert set(dense_state(block_a)) == set(block_c.state_dict())


def test_conversion_keeps_dtype_mode_and_spec():
    source = build_model(SPECS["basic"].replace(form="b"), dtype=torch.float64).train()
    target = convert(source, "a")
    assert next(target.parameters()).dtype == torch.float64
    assert target.training and target.spec.form == "a"
    assert target.spec.replace(form="b") == source.spec
    source.eval()
    assert not convert(source, "c").training


def test_train_mode_updates_running_stats_identically():
    spec = SPECS["resnext-bottleneck"].replace(form="a")
    source = randomize_(build_model(spec, dtype=torch.float64), seed=1)
    target = convert(source, "c")
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    source.train()(x)
    target.train()(x)
    back = convert(source, "c").state_dict()
    for key, value in target.state_dict().items():
        assert (back[key].double() - value.double()).abs().max() <= 1e-12, key


def test_convert_rejects_bad_form_and_foreign_models():
    model = build_model(SPECS["basic"])
    with pytest.raises(ValueError, match="^form: 'd' is not allowed"):
        convert(model, "d")
    with pytest.raises(TypeError, match="made by builder.build_model"):
        convert(torch.nn.Linear(2, 2), "a")


@pytest.mark.parametrize("name", ["resnext50_32x4d", "resnext29_8x64d"])
def test_a_real_preset_converts_exactly(name):
    """Every stage and block of a full preset, float64, eval and train mode, at a small image.

    Small, but not too small: at 32x32 ResNeXt-50's last stage is 1x1, and train-mode BN then
    normalises each channel over 2 values (batch 2), which amplifies float64 rounding to
    ~5e-8. At 64x64 (2x2, 8 values per channel) the forms agree to ~1e-13."""
    spec = PRESETS[name].replace(image_size=64 if PRESETS[name].stem == "imagenet" else 8)
    rows = check_equivalence(spec, batch_size=2, dtypes=(torch.float64,))
    assert [(r["form"], r["mode"]) for r in rows] == [
        ("a", "eval"), ("a", "train"), ("b", "eval"), ("b", "train")]
    assert max(r["max_abs_diff"] for r in rows) <= BOUND_FLOAT64_ABS, rows
