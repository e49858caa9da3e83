"""builder.guards: the estimates against the real thing, the limits against the presets, and
the refusal of what nobody should build."""

import contextlib
import doctest
import itertools
import time
from unittest import mock

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from builder import PRESETS, ResNeXtSpec, SpecError, build_model, guards
from builder.cli import main
from builder.guards import (
    Estimate,
    Limits,
    ResourceLimitError,
    activation_elements,
    check,
    count_modules,
    estimate,
    saved_elements,
)

FORMS = ("a", "b", "c")
HUGE = ResNeXtSpec(cardinality=4096, width_per_group=4096, depths=(128,) * 8, form="a")


def _noop(tensor, *args, **kwargs):
    return tensor


@contextlib.contextmanager
def _no_init():
    """Build the structure only: the random initialisation of ~15k modules on the meta device
    takes minutes (torch's meta `normal_` is slow); it does not change what is built."""
    with mock.patch.multiple(torch.nn.init, kaiming_normal_=_noop, kaiming_uniform_=_noop,
                             uniform_=_noop, ones_=_noop, zeros_=_noop):
        yield


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores are shared: torch's intra-op threads only fight each other here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _structure(spec):
    """What the module tree depends on: not d, not the image size or the classes."""
    return spec.replace(width_per_group=1, image_size=224, num_classes=1)


def _preset_cases():
    seen = {}
    for name, form in itertools.product(PRESETS, FORMS):
        spec = PRESETS[name].replace(form=form)
        if form != "c" and _structure(spec) in seen:  # resnext101_32x8d: that of 32x4d
            continue
        seen[_structure(spec)] = name
        slow = count_modules(spec) > 5000  # 3 to 10 s each on a busy machine
        yield pytest.param(name, form, id=f"{name}-{form}",
                           marks=[pytest.mark.slow] if slow else [])


# -- modules and parameters: exact ----------------------------------------------------------
@pytest.mark.parametrize("name,form", list(_preset_cases()))
def test_modules_and_params_are_exact_for_presets(name, form):
    spec = PRESETS[name].replace(form=form)
    with _no_init():
        model = build_model(spec, device="meta")
    e = estimate(spec)
    assert e.modules == len(list(model.modules()))
    assert e.params == sum(p.numel() for p in model.parameters())
    assert e.param_bytes == 4 * e.params


@pytest.mark.parametrize("spec", [
    ResNeXtSpec(cardinality=4, width_per_group=8, depths=(2, 1, 2), stem="cifar",
                stem_width=256, form="a"),  # stage 1 in == out: no projection
    ResNeXtSpec(cardinality=3, width_per_group=5, depths=(1,), stride_on="1x1", form="b"),
    ResNeXtSpec(cardinality=2, width_per_group=3, depths=(1, 1, 1, 1, 1), block="basic",
                stem_width=32, form="a"),
    ResNeXtSpec(cardinality=5, width_per_group=2, depths=(2, 2), block="basic", form="b"),
    ResNeXtSpec(cardinality=7, width_per_group=1, depths=(1, 2, 1), form="c", num_classes=3),
], ids=["no-projection-a", "one-stage-v1-b", "basic-5-stages-a", "basic-b", "odd-c"])
def test_modules_and_params_are_exact_off_the_presets(spec):
    with _no_init():
        model = build_model(spec, device="meta")
    assert count_modules(spec) == len(list(model.modules()))
    assert estimate(spec).params == sum(p.numel() for p in model.parameters())


def test_presets_left_out_above_share_a_module_tree_with_one_built():
    built = {_structure(PRESETS[n].replace(form=f)) for n, f in (
        p.values for p in _preset_cases())}
    for name, form in itertools.product(PRESETS, FORMS):
        spec = PRESETS[name].replace(form=form)
        assert _structure(spec) in built
        assert count_modules(spec) == count_modules(_structure(spec))


def test_module_counts_of_the_biggest_presets():
    """The numbers quoted in builder/guards.py and the report."""
    assert count_modules(PRESETS["resnext101_64x4d"].replace(form="a")) == 14939
    assert count_modules(PRESETS["resnext101_64x4d"].replace(form="b")) == 12860
    assert count_modules(PRESETS["resnext50_32x4d"].replace(form="a")) == 3671
    assert count_modules(PRESETS["resnet50"]) == 151
    assert count_modules(HUGE) == 29_364_263  # 1024 blocks x (4 + 7 x 4096) + 7 + 8 + 7 x 3


# -- activations: against measurements on small specs -------------------------------------
SMALL = [
    ResNeXtSpec(cardinality=4, width_per_group=4, depths=(2, 1), form=form, block=block,
                stem=stem, stride_on=stride_on, image_size=32 if stem == "imagenet" else 16,
                num_classes=10, stem_width=16)
    for block, form, stem, stride_on in itertools.product(
        ("bottleneck", "basic"), FORMS, ("imagenet", "cifar"), ("3x3", "1x1"))
    if not (block == "basic" and stride_on == "1x1")]
BATCH = 2


def _id(spec):
    return f"{spec.block}-{spec.form}-{spec.stem}-{spec.stride_on}"


def _saved_bytes(model, x):
    """What a training forward leaves for the backward pass: every tensor autograd saves
    (dedup'd by storage; parameters, their views and BN's 1-d statistics left out), the
    input and the output."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if t.dim() > 1 and storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    for t in (x, out):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def _peak_bytes(run, x):
    """Peak of CPU memory allocated during `run()` by torch.profiler's memory events, plus
    the input (allocated before)."""
    run()  # warm up: lazily created state is not the model's
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    now = peak = 0
    for event in events:
        now += event.self_cpu_memory_usage
        peak = max(peak, now)
    return peak + x.numel() * x.element_size()


@pytest.mark.parametrize("spec", SMALL, ids=_id)
def test_kept_activations_are_exact(spec):
    torch.manual_seed(0)
    model = build_model(spec).train()
    x = torch.randn(BATCH, spec.in_channels, spec.image_size, spec.image_size)
    values, indices = saved_elements(spec)
    assert _saved_bytes(model, x) == BATCH * (4 * values + 8 * indices)


@pytest.mark.parametrize("spec", [s for s in SMALL if s.stride_on == "3x3" and (
    s.stem == "imagenet" or s.form == "a")], ids=_id)
def test_activation_peaks_within_ten_percent_of_the_profiler(spec):
    torch.manual_seed(0)
    model = build_model(spec)
    x = torch.randn(BATCH, spec.in_channels, spec.image_size, spec.image_size)

    def inference():
        with torch.no_grad():
            model(x)

    model.eval()
    measured = _peak_bytes(inference, x)
    estimated = estimate(spec, BATCH).activation_bytes
    assert 0.9 <= estimated / measured <= 1.1, (estimated, measured)
    model.train()
    measured = _peak_bytes(lambda: model(x), x)
    estimated = estimate(spec, BATCH, mode="training").activation_bytes
    assert 0.9 <= estimated / measured <= 1.1, (estimated, measured)


def test_activation_numbers_of_resnet50():
    """Golden numbers (fp32, batch 1, 224): the estimate must not drift unnoticed."""
    spec = PRESETS["resnet50"]
    assert activation_elements(spec, "inference") == (2_960_384, 0)
    assert activation_elements(spec, "training") == (21_174_272, 200_704)
    assert estimate(spec).activation_bytes == 11_841_536
    assert estimate(spec, mode="training").activation_bytes == 86_302_720


def test_estimate_scales_with_batch_and_dtype():
    spec = PRESETS["resnext50_32x4d"]
    one = estimate(spec, 1, 4, "training")
    more = estimate(spec, 16, 2, "training")
    values, indices = activation_elements(spec, "training")
    assert one.activation_bytes == 4 * values + 8 * indices
    assert more.activation_bytes == 16 * (2 * values + 8 * indices)  # indices stay int64
    assert more.param_bytes == 2 * one.params
    assert more.macs == 16 * one.macs == 16 * 4_230_549_096
    assert more.memory_bytes == 3 * more.param_bytes + more.activation_bytes
    inference = estimate(spec, 16, 2)
    assert inference.memory_bytes == inference.param_bytes + inference.activation_bytes


# -- limits: the presets pass, the monsters do not ----------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_and_form_passes_the_cpu_limits_at_batch_1(name):
    for form, mode in itertools.product(FORMS, guards.MODES):
        e = check(PRESETS[name].replace(form=form), mode=mode)
        assert isinstance(e, Estimate) and e.batch_size == 1


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_times_on_an_80gb_gpu_at_batch_128(name):
    limits = Limits.for_device("cuda")
    for form, mode, dtype_bytes in itertools.product(FORMS, guards.MODES, (2, 4)):
        check(PRESETS[name].replace(form=form), 128, limits, mode, dtype_bytes)


def test_resnext101_32x8d_bf16_batch_128_on_the_gpu():
    spec = PRESETS["resnext101_32x8d"]
    limits = Limits.for_device("cuda")
    e = check(spec, batch_size=128, limits=limits, mode="training", dtype_bytes=2)
    assert 10 * 10**9 < e.memory_bytes < limits.max_memory_bytes == 64 * 10**9
    with pytest.raises(ResourceLimitError):  # not on the CPU
        check(spec, batch_size=128, mode="training", dtype_bytes=2)


def test_a_huge_spec_is_refused_in_milliseconds_without_building():
    with mock.patch.object(torch.nn.Module, "__init__", side_effect=AssertionError("built")):
        for form in FORMS:
            start = time.process_time()  # CPU time: the machine is shared
            with pytest.raises(ResourceLimitError) as info:
                check(HUGE.replace(form=form))
            assert time.process_time() - start < 0.1
            assert [name for name, _, _ in info.value.over] == (
                ["params", "memory", "modules", "macs"] if form != "c"
                else ["params", "memory", "macs"])


def test_the_message_gives_each_estimate_and_limit():
    with pytest.raises(ResourceLimitError) as info:
        check(HUGE)
    error = info.value
    assert isinstance(error, SpecError) and isinstance(error, ValueError)
    assert error.field == "params" and error.value == 1_753_329_978_484_680_488
    assert error.allowed == "at most 1000000000"
    assert error.estimate.modules == 29_364_263
    assert str(error) == (
        "params: 1.8e18 estimated, the limit is 1.0e9; "
        "memory: 7.0e18 bytes estimated (inference, batch 1, 4-byte values: parameters "
        "7.0e18 bytes, activations 202.7 MiB), the limit is 8.0 GiB; "
        "modules: 2.9e7 estimated (form (a) builds 7 modules for each of the C=4096 paths "
        "of 1024 blocks; form (c) builds the same network with 8231), the limit is 3.0e4; "
        "macs: 3.3e18 multiply-adds estimated for a batch of 1 at 224x224, the limit is 2.0e11. "
        "Make the network smaller (cardinality, width_per_group, depths, image_size) "
        "or the batch.")


def test_only_what_is_over_is_named():
    with pytest.raises(ResourceLimitError) as info:
        check(PRESETS["resnet50"], batch_size=256, mode="training")
    assert [name for name, _, _ in info.value.over] == ["memory", "macs"]
    assert str(info.value).startswith(
        "memory: 20.9 GiB estimated (training, batch 256, 4-byte values: parameters 97.5 MiB "
        "x3, activations 20.6 GiB), the limit is 8.0 GiB; macs: 1.0e12 multiply-adds estimated")
    # form (a) at C=256 (d=1) in a ResNeXt-101: only the module count is over
    with pytest.raises(ResourceLimitError) as info:
        check(PRESETS["resnext101_64x4d"].replace(cardinality=256, width_per_group=1, form="a"))
    assert info.value.field == "modules" and len(info.value.over) == 1
    assert "form (c) builds the same network with 287" in str(info.value)


def test_custom_limits():
    spec = PRESETS["resnet18"]
    assert check(spec, limits=Limits(max_params=11_689_512)).params == 11_689_512
    with pytest.raises(ResourceLimitError, match=r"^params: 1\.2e7 estimated, the limit is "
                                                  r"1\.1e7\. Make"):
        check(spec, limits=Limits(max_params=11_000_000))
    # as many digits as it takes to see the difference
    with pytest.raises(ResourceLimitError, match=r"^params: 1\.17e7 estimated, the limit is "
                                                  r"1\.16e7\. Make"):
        check(spec, limits=Limits(max_params=11_600_000))
    with pytest.raises(ResourceLimitError, match="^params: 11,689,512 estimated, the limit is "
                                                 "11,689,511. Make"):
        check(spec, limits=Limits(max_params=11_689_511))
    with pytest.raises(ResourceLimitError) as info:
        check(spec, limits=Limits(max_memory_bytes=2**20))
    assert str(info.value).startswith(
        "memory: 51.3 MiB estimated (inference, batch 1, 4-byte values: parameters 44.6 MiB, "
        "activations 6.7 MiB), the limit is 1.0 MiB. Make")
    memory = estimate(spec).memory_bytes
    with pytest.raises(ResourceLimitError) as info:
        check(spec, limits=Limits(max_memory_bytes=memory - 1))
    assert str(info.value).startswith(
        f"memory: {memory:,} bytes estimated (inference, batch 1, 4-byte values: "
        f"parameters 44.6 MiB, activations 6.7 MiB), the limit is {memory - 1:,} bytes. Make")


def test_limits_for_device():
    assert Limits.for_device("cpu") == Limits()
    assert Limits.for_device("cpu", memory_bytes=10 * 2**30).max_memory_bytes == 8 * 2**30
    cuda = Limits.for_device("cuda:0", memory_bytes=40 * 10**9)
    assert cuda.max_memory_bytes == 32 * 10**9 and cuda.max_batch_size == 4096
    with pytest.raises(SpecError, match="^device: 'mps' is not allowed"):
        Limits.for_device("mps")


@pytest.mark.parametrize("kwargs,field", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": True}, "batch_size"),
    ({"batch_size": 2.0}, "batch_size"), ({"batch_size": 257}, "batch_size"),
    ({"batch_size": 10**400}, "batch_size"), ({"dtype_bytes": 3}, "dtype_bytes"),
    ({"dtype_bytes": 4.0}, "dtype_bytes"), ({"dtype_bytes": True}, "dtype_bytes"),
    ({"mode": "train"}, "mode"), ({"mode": None}, "mode"),
])
def test_bad_arguments_name_their_field(kwargs, field):
    with pytest.raises(SpecError) as info:
        check(PRESETS["resnet18"], **kwargs)
    assert info.value.field == field
    assert not isinstance(info.value, ResourceLimitError)
    assert str(info.value).startswith(f"{field}: ")


def test_bad_spec_and_limits():
    with pytest.raises(SpecError, match="^spec: 'dict' is not allowed"):
        estimate({"cardinality": 32})
    with pytest.raises(TypeError, match="limits must be a Limits"):
        check(PRESETS["resnet18"], limits={"max_params": 1})


def test_docstring_example():
    assert doctest.testmod(guards).failed == 0


def test_cli_check_refuses_a_huge_spec_before_building(capsys):
    argv = ["check", "-C", "4096", "-d", "4096", "--depths", ",".join(["128"] * 8),
            "--form", "a"]
    with mock.patch.object(torch.nn.Module, "__init__", side_effect=AssertionError("built")):
        assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: params: 1.8e18 estimated, the limit is 1.0e9; memory: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_check_counts_float64_and_the_batch(capsys):
    """`check` runs in float64: 8-byte values, at the batch it is given."""
    spec = PRESETS["resnet50"].replace(image_size=448)
    with pytest.raises(ResourceLimitError) as info:
        check(spec, batch_size=128, dtype_bytes=8)
    assert str(info.value).startswith("memory: 11.5 GiB estimated (inference, batch 128, "
                                      "8-byte values")
    check(spec, batch_size=128, dtype_bytes=4, limits=Limits(max_macs=10**15))  # fp32 fits
    with mock.patch("builder.convert.check_equivalence", side_effect=AssertionError("ran")):
        assert main(["check", "--preset", "resnet50", "--image-size", "448", "--batch",
                     "128"]) == 2
    assert capsys.readouterr().err == f"error: {info.value}\n"


def test_a_build_estimated_over_the_time_limit_is_refused():
    """C=266, d=1 in form (a) has 29,879 modules, under the 30,000 limit, and took 31 s to
    build (/build had no time limit). Now its build is estimated from its modules (33 s at
    BUILD_S_PER_MODULE) and refused against Limits.max_build_s (20 s), naming both."""
    spec = ResNeXtSpec(cardinality=266, width_per_group=1, form="a")
    assert guards.count_modules(spec) == 29_879 < Limits().max_modules
    with mock.patch.object(torch.nn.Module, "__init__", side_effect=AssertionError("built")):
        with pytest.raises(ResourceLimitError) as info:
            check(spec)
    assert str(info.value) == (
        "build_s: about 32.9 s estimated to build 29,879 modules, the limit is 20 s. Make the "
        "network smaller (cardinality, width_per_group, depths, image_size) or the batch.")
    assert info.value.over == [("build_s", 32.9, 20.0)] and info.value.field == "build_s"
    # a summary costs more per module: resnext50_32x4d in form (a) builds, is not summarised
    spec = PRESETS["resnext50_32x4d"].replace(form="a")
    assert check(spec).build_seconds == pytest.approx(3671 * guards.BUILD_S_PER_MODULE)
    assert check(spec, work="summary").summary_seconds == pytest.approx(9.18, abs=0.01)
    with pytest.raises(ResourceLimitError, match="^summary_s: about 37.3 s estimated to "
                                                 "summarise 14,939 modules, the limit is 20 s"):
        check(PRESETS["resnext101_64x4d"].replace(form="a"), work="summary")
    with pytest.raises(SpecError, match="^work: 'train' is not allowed"):
        check(spec, work="train")


def test_every_preset_in_every_form_builds_within_the_time_limit():
    for name, spec in PRESETS.items():
        for form in FORMS:
            assert check(spec.replace(form=form)).build_seconds <= Limits().max_build_s, name
