"""convert(): the same function in another form, in eval and train mode, float64 and float32."""

import importlib

import pytest
import torch

from builder import PRESETS, build_model, check_equivalence, convert, randomize_
from builder.convert import dense_state

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
        assert row["ok"] and row["max_abs_diff"] <= row["bound"], row
        # these outputs are about 1 to 10: the measured bound is tighter than the fixed ones
        # it replaced (1e-10 absolute in float64, 1e-4 relative in float32)
        assert row["bound"] <= (1e-12 if row["dtype"] == "float64" else 1e-4), row
        assert row["bound_text"].startswith("<= 8 x the reference's own float32 rounding")


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


@pytest.mark.parametrize("form", "abc")
def test_a_converted_model_owns_every_tensor(form):
    """The target is built on meta and assigned the state: nothing may stay on meta, no two
    tensors may share storage (safetensors refuses that, and one update would move both),
    none may share the source's, and every parameter still takes a gradient."""
    source = build_model(SPECS["resnext-bottleneck"].replace(form="b"))
    target = convert(source, form)
    tensors = list(target.parameters()) + list(target.buffers())
    assert {t.device.type for t in tensors} == {"cpu"}
    pointers = [t.untyped_storage().data_ptr() for t in tensors]
    assert len(set(pointers)) == len(pointers)
    theirs = {t.untyped_storage().data_ptr() for t in source.state_dict().values()}
    assert not theirs & set(pointers)
    assert all(p.requires_grad and p.is_leaf for p in target.parameters())
    assert sum(p.numel() for p in target.parameters()) == sum(
        p.numel() for p in source.parameters())


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
    assert all(r["ok"] for r in rows), rows
    assert max(r["max_abs_diff"] for r in rows) <= 1e-10, rows


# -- the bound: measured from the reference's own rounding, failing for real faults ------------
DEEP = PRESETS["resnext101_64x4d"].replace(form="a", cardinality=4, width_per_group=2,
                                           image_size=32)


def test_a_deep_network_with_huge_outputs_passes():
    """resnext101_64x4d's depths (3, 4, 23, 3) in form (a), eval mode: form (a)'s per-path
    initialisation grows the output by orders of magnitude per block (here to ~4e9; the full
    preset reached ~3e31). The fixed bound of 1e-10 absolute in float64 failed this equal
    function (differences ~1e-5, relative ~4e-15); the bound measured from the reference's
    own float32 rounding grows with the output and passes it."""
    rows = check_equivalence(DEEP, batch_size=2, dtypes=(torch.float64,), modes=("eval",))
    assert [(r["form"], r["dtype"]) for r in rows] == [("b", "float64"), ("c", "float64")]
    for r in rows:
        scale = r["max_abs_diff"] / r["rel_error"]
        assert scale > 1e8, r  # huge outputs
        assert r["max_abs_diff"] > 1e-10, r  # the old absolute bound would have failed
        assert r["rel_error"] < 1e-13, r  # float64 rounding, nothing more
        assert r["ok"] and r["max_abs_diff"] <= r["bound"], r


def _stride_flipped(convert_module):
    real = convert_module.convert

    def convert(model, form):
        """The conversion, into a model whose stride sits on the other layer."""
        good = real(model, form)
        flipped = "1x1" if good.spec.stride_on == "3x3" else "3x3"
        bad = build_model(good.spec.replace(stride_on=flipped),
                          dtype=next(good.parameters()).dtype)
        bad.load_state_dict(good.state_dict())
        return bad.train(good.training)
    return convert


def _bn_slice_off_by_one(convert_module):
    real = convert_module.convert

    def convert(model, form):
        """The conversion, with the first BN of one block rolled by one channel: the per-path
        slices of forms (a) and (b) off by one."""
        good = real(model, form)
        block = good.layer2[0]
        state = dense_state(block)
        for key in ("bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"):
            state[key] = state[key].roll(1)
        convert_module.load_dense_state(block, state)
        return good
    return convert


@pytest.mark.parametrize("fault", [_stride_flipped, _bn_slice_off_by_one])
def test_a_real_fault_exceeds_the_bound(fault, monkeypatch):
    """Before the measured bound this held too; it must keep holding: a stride on the wrong
    layer, or a BN slice off by one, fails every row in both dtypes and both BN modes."""
    convert_module = importlib.import_module("builder.convert")  # builder.convert: a function
    monkeypatch.setattr(convert_module, "convert", fault(convert_module))
    spec = SPECS["resnext-stride-1x1"].replace(form="a")
    rows = check_equivalence(spec, batch_size=4)
    assert len(rows) == 8
    assert [r for r in rows if r["ok"]] == []
    for r in rows:
        assert r["max_abs_diff"] > 100 * r["bound"], r
