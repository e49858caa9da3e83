"""builder.weights, builder.infer, builder.export_weights: checkpoints made here, no downloads.

Big presets are inferred from shapes only (a meta-device state dict: no memory); forward
passes use small specs (one block per stage, 32x32 images).
"""

import os
import pickle
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder import PRESETS, ResNeXtSpec, build_model, randomize_
from builder.convert import check_equivalence
from builder.export_weights import (
    RANDOM,
    TIMM_ARGS,
    TimmUnsupported,
    convert_state,
    export_pt2,
    export_safetensors,
    export_timm,
    timm_config,
)
from builder.infer import fit_problem, infer_spec, load_into
from builder.weights import (
    WeightsError,
    read_shapes,
    read_state_dict,
    save_safetensors,
    unwrap,
)

ASSUMED = ["stride_on", "image_size", "zero_init_residual"]


def small(spec: ResNeXtSpec, **changes) -> ResNeXtSpec:
    return spec.replace(depths=(1,) * len(spec.depths), image_size=32, **changes)


def meta_shapes(spec):
    return {k: tuple(v.shape) for k, v in build_model(spec, device="meta").state_dict().items()}


def real_state(spec, seed=0):
    torch.manual_seed(seed)
    return randomize_(build_model(spec), seed).state_dict()


def as_inferred(spec: ResNeXtSpec) -> ResNeXtSpec:
    """What inference gives for `spec`: the assumed fields at their defaults, and a basic
    block in form (c) as C=1 (one dense block, the same weights)."""
    spec = spec.replace(stride_on="3x3", zero_init_residual=False,
                        image_size=32 if spec.stem == "cifar" else 224)
    if spec.block == "basic" and spec.form == "c":
        spec = spec.replace(cardinality=1, width_per_group=spec.width(0))
    return spec


# -- inference -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_inferred_and_named_from_shapes(name):
    inferred = infer_spec(meta_shapes(PRESETS[name]))
    assert inferred.spec == PRESETS[name]
    assert inferred.preset == name
    basic = PRESETS[name].block == "basic"  # form (c): one dense block, C=1 assumed
    assert inferred.assumed == (["cardinality"] if basic else []) + ASSUMED
    assert inferred.notes[0].startswith(f"{PRESETS[name].name}, form (c): ")


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d",
                                  "resnext29_8x64d"])
@pytest.mark.parametrize("form", ["a", "b"])
def test_forms_a_and_b_are_inferred_by_counting_paths(name, form):
    inferred = infer_spec(meta_shapes(PRESETS[name].replace(form=form)))
    assert inferred.spec == PRESETS[name].replace(form=form)
    assert inferred.preset == name
    assert f"in form ({form})" in inferred.notes[0]


def test_a_changed_preset_is_no_preset():
    spec = PRESETS["resnext50_32x4d"].replace(num_classes=10)
    assert infer_spec(meta_shapes(spec)).preset is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cardinality=st.integers(1, 4), d=st.integers(1, 8),
       depths=st.lists(st.integers(1, 2), min_size=1, max_size=4),
       form=st.sampled_from("abc"), block=st.sampled_from(["bottleneck", "basic"]),
       stem=st.sampled_from(["imagenet", "cifar"]), classes=st.integers(1, 20),
       in_channels=st.integers(1, 4), stem_width=st.integers(1, 32),
       nesting=st.sampled_from([None, "state_dict", "model"]), prefix=st.booleans())
def test_random_specs_are_inferred_with_and_without_nesting_and_prefix(
        cardinality, d, depths, form, block, stem, classes, in_channels, stem_width, nesting,
        prefix):
    spec = ResNeXtSpec(cardinality=cardinality, width_per_group=d, depths=tuple(depths),
                       form=form, block=block, stem=stem, num_classes=classes,
                       in_channels=in_channels, stem_width=stem_width)
    state = build_model(spec, device="meta").state_dict()
    if prefix:
        state = {"module." + k: v for k, v in state.items()}
    if nesting:
        state = {nesting: state, "epoch": 3}
    inferred = infer_spec(unwrap(state))
    assert inferred.spec == as_inferred(spec)
    expected = ASSUMED if not (block == "basic" and form == "c") else ["cardinality", *ASSUMED]
    assert inferred.assumed == expected


def test_a_state_dict_of_something_else_says_which_key_is_wrong():
    with pytest.raises(WeightsError, match=r"^weights: conv1.weight is missing; expected the "
                                           r"stem convolution"):
        infer_spec({"encoder.weight": (3, 3)})
    shapes = meta_shapes(small(PRESETS["resnet50"]))
    shapes["conv1.weight"] = (64, 3, 5, 5)
    with pytest.raises(WeightsError, match="5x5 kernel; expected 7x7"):
        infer_spec(shapes)
    shapes = meta_shapes(small(PRESETS["resnet50"]))
    shapes["layer2.0.conv1.weight"] = (99, 256, 1, 1)
    with pytest.raises(WeightsError, match=r"the first wrong shape is layer2.0.conv1.weight: "
                                           r"\[99, 256, 1, 1\] in the file, \[128, 256, 1, 1\]"):
        infer_spec(shapes)


def test_load_into_a_spec_that_does_not_fit_is_one_sentence():
    state = real_state(small(PRESETS["resnext50_32x4d"]))
    other = small(PRESETS["resnet50"])
    with pytest.raises(WeightsError) as info:
        load_into(other, state, "ckpt.pth")
    message = str(info.value)
    assert message.startswith("ckpt.pth: they do not fit ResNet-14, form (c): ")
    assert "the first wrong shape is layer1.0.conv1.weight: [128, 64, 1, 1] in the file, " \
           "[64, 64, 1, 1] in the model" in message
    assert "\n" not in message
    del state["fc.bias"]
    state["extra.weight"] = torch.zeros(1)
    problem = fit_problem(small(PRESETS["resnext50_32x4d"]), state)
    assert problem == "1 keys are missing (fc.bias); 1 are unexpected (extra.weight)"


# -- reading safely ------------------------------------------------------------------------
class Touch:
    """A pickle whose loading would create a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    zipped = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": Touch(marker)}, zipped)  # torch's zip
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps(Touch(marker)))  # a bare pickle, no zip
    assert zipfile.is_zipfile(zipped) and not zipfile.is_zipfile(legacy)
    for path in (zipped, legacy):
        with pytest.raises(WeightsError) as info:
            read_state_dict(path)
        assert "refused: the pickle asks for a global" in str(info.value) or \
            "not a readable PyTorch file" in str(info.value)
        assert str(info.value).startswith(path.name + ": ")
        assert "\n" not in str(info.value)
    with pytest.raises(WeightsError, match=r"evil.pth: refused: the pickle asks for a global "
                                           r"\((posix|nt).system\)"):
        read_state_dict(zipped)
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], "holds a list, not a mapping of names to tensors"),
    ({"conv1.weight": torch.zeros(1), "name": "resnet"}, "'name' holds a str"),
    ({}, "it is empty"),
    ({1: torch.zeros(1)}, "a key is a int"),
    ({"a": {"b": {"c": {"d": {"e": 1}}}}}, "'a' holds a dict"),
])
def test_a_pickle_that_is_not_a_state_dict_of_tensors_is_refused(content, message, tmp_path):
    path = tmp_path / "bad.pth"
    torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        read_state_dict(path)


def test_the_size_cap_is_checked_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_safetensors({"a": torch.zeros(1000)}, path)
    size = path.stat().st_size
    monkeypatch.setattr("safetensors.safe_open", None)  # reading would now fail otherwise
    with pytest.raises(WeightsError, match=f"w.safetensors: {size:,} bytes is over the cap "
                                           "of 100 bytes"):
        read_state_dict(path, max_bytes=100)


def test_a_fifo_a_directory_and_an_unknown_suffix_are_refused(tmp_path):
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)  # opening it would block: it must never be opened
    with pytest.raises(WeightsError, match="pipe.pth: not a regular file"):
        read_state_dict(fifo)
    (tmp_path / "dir.safetensors").mkdir()
    with pytest.raises(WeightsError, match="not a regular file"):
        read_shapes(tmp_path / "dir.safetensors")
    with pytest.raises(WeightsError, match=r"unknown suffix '.npz'; expected one of "
                                           r".safetensors, .pth, .pt, .bin"):
        read_state_dict(tmp_path / "w.npz")
    with pytest.raises(WeightsError, match="missing.pth: cannot read it: No such file"):
        read_state_dict(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(WeightsError, match="garbage.safetensors: not a readable safetensors"):
        read_state_dict(garbage)


def test_shapes_come_from_the_safetensors_header_without_reading_tensors(tmp_path,
                                                                         monkeypatch):
    spec = small(PRESETS["resnext50_32x4d"])
    path = tmp_path / "w.safetensors"
    save_safetensors({"module." + k: v for k, v in real_state(spec).items()}, path)
    import safetensors

    opened = safetensors.safe_open

    class NoTensors:
        def __init__(self, *args, **kwargs):
            self.inner = opened(*args, **kwargs)

        def __enter__(self):
            self.handle = self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def keys(self):
            return self.handle.keys()

        def get_slice(self, key):
            return self.handle.get_slice(key)

        def get_tensor(self, key):
            raise AssertionError("a tensor was read")

    monkeypatch.setattr(safetensors, "safe_open", NoTensors)
    shapes = read_shapes(path)
    assert shapes == meta_shapes(spec)
    assert infer_spec(shapes).spec == as_inferred(spec)


# -- round trips: every form, every format -------------------------------------------------
def outputs(model, spec, seed=1):
    images = torch.randn(2, spec.in_channels, spec.image_size, spec.image_size,
                         generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(images)


@pytest.mark.parametrize("block", ["bottleneck", "basic"])
@pytest.mark.parametrize("source_form", "abc")
def test_convert_round_trips_every_form_through_safetensors_and_pth(block, source_form,
                                                                    tmp_path):
    spec = small(ResNeXtSpec(cardinality=4, width_per_group=4, block=block,
                             form=source_form, num_classes=10))
    state = real_state(spec)
    reference = outputs(load_into(spec, state), spec)
    for target in "abc":
        converted = convert_state(spec, state, target)
        for suffix in (".safetensors", ".pth"):
            path = tmp_path / f"{target}{suffix}"
            if suffix == ".pth":
                torch.save({"model": converted}, path)
            else:
                save_safetensors(converted, path)
            loaded = read_state_dict(path)
            found = infer_spec(loaded).spec
            assert found.form == target
            model = load_into(spec.replace(form=target), loaded)
            got = outputs(model, spec)
            # float32 conversion of the same function: within builder.convert's rel bound
            assert (got - reference).abs().max().item() <= 1e-4 * reference.abs().max().item()


def test_check_equivalence_runs_on_loaded_weights():
    spec = small(PRESETS["resnext50_32x4d"].replace(cardinality=4))
    state = real_state(spec, seed=5)
    rows = check_equivalence(spec, state_dict=state, dtypes=(torch.float64,))
    assert [r["form"] for r in rows] == ["a", "a", "b", "b"]
    assert all(r["ok"] for r in rows)
    with pytest.raises(RuntimeError, match="size mismatch"):
        check_equivalence(spec.replace(cardinality=2), state_dict=state)


def test_safetensors_export_is_torchvisions_layout_and_says_which_weights(tmp_path):
    spec = small(PRESETS["resnext50_32x4d"].replace(cardinality=4), form="a")
    state = real_state(spec)
    path = export_safetensors(spec, tmp_path / "w.safetensors", state, "ckpt.pth")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["weights"] == "loaded from ckpt.pth"
    assert ResNeXtSpec.from_json(metadata["spec"]) == spec.replace(form="c")
    dense = read_state_dict(path)
    assert set(dense) == set(meta_shapes(spec.replace(form="c")))
    random_path = export_safetensors(spec, tmp_path / "r.safetensors")
    with safe_open(str(random_path), "pt") as handle:
        assert handle.metadata()["weights"] == RANDOM


def test_timm_folder_config_fields_and_weights(tmp_path):
    spec = small(PRESETS["resnext50_32x4d"].replace(cardinality=4), form="b", num_classes=10)
    state = real_state(spec)
    folder = export_timm(spec, tmp_path / "timm", state, "ckpt.pth")
    import json

    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "resnet50"
    assert config["model_args"] == {"layers": [1, 1, 1, 1], "cardinality": 4, "base_width": 4,
                                    "stem_width": 64, "stem_type": "", "num_classes": 10,
                                    "in_chans": 3}
    assert tuple(config["model_args"]) == TIMM_ARGS
    assert config["num_features"] == 2048 and config["num_classes"] == 10
    assert config["builder"]["weights"] == "loaded from ckpt.pth"
    dense = read_state_dict(folder / "model.safetensors")
    model = load_into(spec.replace(form="c"), dense)
    reference = outputs(load_into(spec, state), spec)
    assert (outputs(model, spec) - reference).abs().max().item() <= \
        1e-4 * reference.abs().max().item()


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                  "wide_resnet50_2", "resnext50_32x4d", "resnext101_32x4d",
                                  "resnext101_32x8d", "resnext101_64x4d"])
def test_timm_names_its_own_entry_point_for_torchvision_presets(name):
    config = timm_config(PRESETS[name].replace(form="a"))
    assert config["architecture"] == name
    args = config["model_args"]
    assert (args["cardinality"], args["base_width"]) == (
        (1, 64) if PRESETS[name].block == "basic" else
        (PRESETS[name].cardinality, PRESETS[name].width_per_group))


@pytest.mark.parametrize("changes, reason", [
    ({"stem": "cifar"}, "the CIFAR stem"),
    ({"stride_on": "1x1"}, "the stride on the 1x1 (ResNet v1): timm's Bottleneck strides on "
                           "the 3x3"),
    ({"depths": (1, 1, 1)}, "3 stages: timm's ResNet has four"),
    ({"stem_width": 32}, "stem_width 32"),
    ({"block": "basic", "cardinality": 2, "width_per_group": 64}, "timm's BasicBlock takes "
                                                                  "only cardinality 1"),
])
def test_timm_refuses_what_its_resnet_cannot_express(changes, reason, tmp_path):
    spec = PRESETS["resnext50_32x4d"].replace(**changes)
    with pytest.raises(TimmUnsupported, match="timm's ResNet cannot express") as info:
        export_timm(spec, tmp_path / "timm")
    assert reason in str(info.value)
    assert not (tmp_path / "timm").exists()


def test_a_basic_block_of_c_paths_goes_to_timm_as_its_dense_block():
    config = timm_config(PRESETS["resnet18"].replace(cardinality=2, width_per_group=32))
    assert config["architecture"] == "resnet18"
    assert (config["model_args"]["cardinality"], config["model_args"]["base_width"]) == (1, 64)


@pytest.mark.parametrize("form", "ac")
def test_pt2_loads_back_and_computes_the_model(form, tmp_path):
    spec = small(PRESETS["resnext50_32x4d"].replace(cardinality=2), form=form)
    state = real_state(spec)
    path = export_pt2(spec, tmp_path / "m.pt2", state, "ckpt.pth")
    extra = {"weights.txt": ""}
    program = torch.export.load(str(path), extra_files=extra)
    assert extra["weights.txt"] == "loaded from ckpt.pth"
    model = load_into(spec, state)
    for batch in (2, 3):  # the batch size is free
        images = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected, got = model(images), program.module()(images)
        # the same aten ops on the same weights, float32: equal within rounding (measured 0.0)
        assert (got - expected).abs().max().item() <= 1e-6 * expected.abs().max().item()


def test_the_exported_model_py_loads_weights(tmp_path):
    import importlib.util

    from builder import export_source

    spec = small(PRESETS["resnext50_32x4d"].replace(cardinality=2), form="b")
    (tmp_path / "model.py").write_text(export_source(spec))
    state = real_state(spec)
    save_safetensors(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pth")
    module_spec = importlib.util.spec_from_file_location("exported_model",
                                                         tmp_path / "model.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    expected = outputs(load_into(spec, state), spec)
    for name in ("w.safetensors", "w.pth"):
        got = outputs(module.load_weights(str(tmp_path / name)), spec)
        assert torch.equal(got, expected)  # the same classes, the same weights: bit-identical
