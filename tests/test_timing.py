"""builder.timing: statistics, the timing loop, BN folding, out-of-memory handling, settings,
the `time` subcommand. CPU runs use tiny specs; GPU paths run where CUDA is available.
No assertion here depends on how fast anything ran (speed targets belong to benchmarks/)."""

import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch
from torch import nn

from builder import PRESETS, ResNeXtSpec, build_model, network_counts, randomize_, registry
from builder import timing as T
from builder.cli import main
from builder.complexity import block_counts
from builder.network import stage_plans

TINY = ResNeXtSpec(cardinality=4, width_per_group=2, depths=(1, 1), stem="cifar",
                   image_size=16, num_classes=10)
TINY_ARGS = ["--cardinality", "4", "--width-per-group", "2", "--depths", "1,1", "--stem",
             "cifar", "--image-size", "16", "--num-classes", "10"]
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU; this machine has none")
needs_no_cuda = pytest.mark.skipif(HAS_CUDA, reason="tests the behaviour without CUDA")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread per test process: on 2 shared cores, 2 OpenMP threads per process
    spend most of their time waiting for each other at barriers. Nothing here is about speed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- statistics --------------------------------------------------------------------------------
def test_quantile_linear_interpolation_on_known_values():
    assert T.quantile([1.0, 2.0, 3.0, 4.0], 0.25) == 1.75
    assert T.quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert T.quantile([1.0, 2.0, 3.0, 4.0], 0.75) == 3.25
    assert T.quantile([7.0], 0.25) == 7.0
    assert T.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0


def test_summarize_known_inputs():
    stats = T.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (stats.median, stats.min, stats.max, stats.q1, stats.q3) == (3.0, 1.0, 5.0, 2.0, 4.0)
    assert stats.iqr == 2.0
    assert stats.noisy  # IQR 2 is 67% of the median 3


@pytest.mark.parametrize("values", [
    [10.0, 10.0, 10.0, 10.0],  # IQR 0
    [9.0, 10.0, 10.0, 11.0],  # IQR 0.5 = 5%
    [8.0, 10.0, 10.0, 12.0],  # IQR 1.0 = 10% exactly: torch warns
    [8.5, 10.0, 10.0, 11.9],  # 9.25%
    [1.0, 2.0, 3.0, 50.0, 51.0, 52.0, 53.0],
])
def test_statistics_match_torch_utils_benchmark(values):
    from torch.utils.benchmark.utils.common import Measurement, TaskSpec

    ms = Measurement(number_per_run=1, raw_times=[v / 1e3 for v in values],
                     task_spec=TaskSpec(stmt="pass", setup="pass"))
    stats = T.summarize(values)
    assert stats.median == pytest.approx(ms.median * 1e3, rel=1e-12)
    assert stats.iqr == pytest.approx(ms.iqr * 1e3, rel=1e-12, abs=1e-12)
    assert stats.noisy == ms.has_warnings


def test_summarize_refuses_no_values():
    with pytest.raises(ValueError, match="no times"):
        T.summarize([])


# -- the timing loop, with a clock the test controls ----------------------------------------------
# Module-level, because time_model times a deep copy of the model it is given.
CALLS: list = []  # (batch size, data_ptr, copy of the input) of every Recorder call
CLOCK = {"t": 0.0}  # a fake clock in seconds


class Recorder(nn.Module):
    """Records its inputs; each call advances the fake clock by (call number) milliseconds."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        CALLS.append((x.shape[0], x.data_ptr(), x.clone()))
        CLOCK["t"] += len(CALLS) / 1e3
        return self.fc(x.flatten(1))


def test_warmup_excluded_and_times_from_the_clock(monkeypatch):
    T.matmul_peak_tflops("cpu")  # measured (and cached) on the real clock first
    CLOCK["t"] = 100.0
    monkeypatch.setattr(T.clock, "_clock", lambda: CLOCK["t"])
    CALLS.clear()
    result = T.time_model(Recorder(), batch_size=2, image_size=4, device="cpu",
                          warmup=2, iters=5, macs=48)
    # calls 1 and 2 are warm-up; calls 3..7 take 3..7 ms on the fake clock
    assert len(CALLS) == 7
    assert result.times_ms == pytest.approx([3.0, 4.0, 5.0, 6.0, 7.0], abs=1e-6)
    assert result.median_ms == pytest.approx(5.0, abs=1e-6)
    assert (result.min_ms, result.max_ms) == pytest.approx((3.0, 7.0), abs=1e-6)
    assert (result.q1_ms, result.q3_ms, result.iqr_ms) == pytest.approx((4.0, 6.0, 2.0), abs=1e-6)
    assert result.noisy  # IQR 2 ms is 40% of 5 ms
    assert result.images_per_s == 2 / result.median_ms * 1000
    assert result.tflops == 2 * 48 * 2 / (result.median_ms / 1000) / 1e12
    assert result.name == "Recorder"


def test_the_batch_is_drawn_once_random_and_seeded():
    CALLS.clear()
    T.time_model(Recorder(), batch_size=3, image_size=4, device="cpu", warmup=1, iters=3,
                 seed=7)
    expected = torch.randn(3, 3, 4, 4, generator=torch.Generator().manual_seed(7))
    assert len(CALLS) == 4
    assert len({ptr for _, ptr, _ in CALLS}) == 1  # one tensor, reused
    for _, _, batch in CALLS:
        assert torch.equal(batch, expected)
    assert expected.abs().min() > 0  # never zeros


def test_cpu_timing_of_a_small_spec_end_to_end():
    result = T.time_model(TINY, batch_size=3, device="cpu", warmup=1, iters=5)
    macs = network_counts(TINY).macs
    assert result.device_type == "cpu"
    assert result.device_label.startswith("CPU: ")
    assert result.device_name == T.device_name(torch.device("cpu"))
    assert result.torch_version == torch.__version__
    assert result.name == f"{TINY.name} form (c)"
    assert (result.batch_size, result.image_size) == (3, 16)
    assert len(result.times_ms) == 5
    stats = T.summarize(result.times_ms)
    assert (result.median_ms, result.min_ms, result.max_ms) == (stats.median, min(
        result.times_ms), max(result.times_ms))
    assert result.iqr_ms == result.q3_ms - result.q1_ms == stats.iqr
    assert result.noisy == (result.iqr_ms >= 0.1 * result.median_ms)
    assert result.images_per_s == 3 / result.median_ms * 1000
    assert result.macs_per_image == macs
    assert result.tflops == 2 * macs * 3 / (result.median_ms / 1000) / 1e12
    key = ("cpu", "fp32", torch.get_num_threads())  # a CPU's peak depends on its threads
    assert result.peak_tflops == T.peak._PEAK_CACHE[key] == T.matmul_peak_tflops("cpu")
    assert result.peak_percent == result.tflops / result.peak_tflops * 100
    assert result.peak_memory_bytes is None  # no CPU allocator statistics
    assert result.fold_rel_error is None and result.check_median_ms is None
    s = result.settings
    assert (s["device"], s["dtype"], s["mode"], s["warmup"], s["iters"], s["seed"]) == (
        "cpu", "fp32", "inference", 1, 5, 0)
    assert s["spec"] == TINY.to_dict()
    assert s["tf32"] is None and s["cudnn_benchmark"] is None and s["autocast"] is None
    assert s["cuda_version"] is None and s["cudnn_version"] is None
    assert s["device_total_memory_bytes"] == T.device_total_memory("cpu")
    assert s["cudagraph_skips"] is None and s["deadline_s"] is None
    assert s["threads"] == torch.get_num_threads()
    assert s["timer"] == "time.perf_counter"
    assert s["flops_per_step"] == 2 * macs * 3
    assert json.loads(json.dumps(result.to_dict()))["median_ms"] == result.median_ms
    assert "CPU" in result.summary() and f"{result.images_per_s:,.1f} img/s" in result.summary()


def test_training_step_times_a_copy_and_counts_three_forward_passes():
    model = randomize_(build_model(TINY))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = T.time_model(model, batch_size=4, device="cpu", mode="train", warmup=1, iters=2)
    for key, value in model.state_dict().items():  # the caller's model is untouched
        assert torch.equal(value, before[key]), key
    assert result.settings["mode"] == "train"
    assert result.settings["optimizer"] == "SGD(lr=0.01, momentum=0.9)"
    assert result.tflops == 3 * 2 * network_counts(TINY).macs * 4 / (result.median_ms / 1e3) / 1e12


def test_image_size_overrides_the_spec_and_its_macs():
    result = T.time_model(TINY, batch_size=1, image_size=8, device="cpu", warmup=0, iters=1)
    assert result.image_size == 8
    assert result.macs_per_image == network_counts(TINY.replace(image_size=8)).macs
    assert result.settings["input_shape"] == [3, 8, 8]


def test_bf16_autocast_on_the_cpu_is_recorded(monkeypatch):
    """Against the bf16 peak, not the fp32 one (both cached here with values of their own: a
    bf16 peak measured on a CPU without bf16 units takes half a minute)."""
    threads = torch.get_num_threads()
    monkeypatch.setitem(T.peak._PEAK_CACHE, ("cpu", "bf16", threads), 1234.5)
    monkeypatch.setitem(T.peak._PEAK_CACHE, ("cpu", "fp32", threads), 999.0)
    result = T.time_model(TINY, batch_size=2, device="cpu", dtype="bf16", fast=True, warmup=0,
                          iters=1)
    assert result.settings["autocast"] == "bfloat16"
    assert result.peak_tflops == 1234.5
    assert result.fold_rel_error <= T.FOLD_TOLERANCE["bf16"]


def test_cross_check_with_torch_utils_benchmark_timer():
    result = T.time_model(TINY, batch_size=2, device="cpu", warmup=1, iters=3, cross_check=True)
    assert result.check_median_ms > 0
    assert result.check_ratio == result.median_ms / result.check_median_ms
    assert result.to_dict()["check_ratio"] == result.check_ratio


# -- BN folding --------------------------------------------------------------------------------
FOLD_SPECS = {
    "bottleneck": TINY,
    "basic": TINY.replace(block="basic"),
    "stride on 1x1, imagenet stem": TINY.replace(stride_on="1x1", stem="imagenet",
                                                 image_size=32),
}


@pytest.mark.parametrize("form", ["a", "b", "c"])
@pytest.mark.parametrize("name", list(FOLD_SPECS))
def test_fold_bn_is_exact_in_float64(name, form):
    spec = FOLD_SPECS[name].replace(form=form)
    torch.manual_seed(0)
    model = randomize_(build_model(spec), seed=1).double().eval()
    folded = T.fold_bn(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0  # original intact
    x = torch.randn(2, 3, spec.image_size, spec.image_size, dtype=torch.float64)
    with torch.no_grad():
        expected, got = model(x), folded(x)
    assert (expected - got).abs().max().item() <= 1e-10 * expected.abs().max().item()
    assert T.relative_error(expected, got) <= 1e-12


def test_fast_mode_checks_the_folded_model_and_refuses_a_wrong_fold(monkeypatch):
    result = T.time_model(TINY.replace(form="a"), batch_size=2, device="cpu", fast=True,
                          warmup=0, iters=1)
    assert 0 <= result.fold_rel_error <= T.FOLD_TOLERANCE["fp32"]
    assert result.settings["fast"] is True

    real_fold = T.fold_bn

    def wrong_fold(model):
        folded = real_fold(model)
        with torch.no_grad():
            folded.fc.bias.add_(1.0)
        return folded

    monkeypatch.setattr(T.runner, "fold_bn", wrong_fold)
    with pytest.raises(T.TimingError, match="BN-folded model differs .* not timed"):
        T.time_model(TINY, batch_size=2, device="cpu", fast=True, warmup=0, iters=1)


# -- out of memory -----------------------------------------------------------------------------
SEEN: list = []  # batch sizes a Greedy model was called with, and weak references to inputs


class Greedy(nn.Module):
    """Runs out of memory above `limit` images, as the allocator would."""

    def __init__(self, limit):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 5)
        self.limit = limit

    def forward(self, x):
        SEEN.append((x.shape[0], weakref.ref(x)))
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {x.shape[0]} GiB (simulated)")
        return self.fc(x.flatten(1))


def test_out_of_memory_names_the_batch_suggests_one_that_fits_and_frees_memory():
    SEEN.clear()
    with pytest.raises(T.TimingError) as info:
        T.time_model(Greedy(limit=4), batch_size=16, image_size=4, device="cpu", warmup=1,
                     iters=2)
    message = str(info.value)
    assert "out of memory at batch size 16" in message
    assert "batch size 4 fits" in message
    assert "simulated" in message
    assert [size for size, _ in SEEN] == [16, 8, 4]  # the failure, then halving until it fits
    assert info.value.__cause__ is None and info.value.__context__ is None
    del info
    import gc

    gc.collect()
    assert all(ref() is None for _, ref in SEEN)  # every batch of every attempt is released
    SEEN.clear()
    result = T.time_model(Greedy(limit=4), batch_size=4, image_size=4, device="cpu",
                          warmup=1, iters=2)  # the next call works
    assert result.batch_size == 4 and len(result.times_ms) == 2


def test_out_of_memory_even_at_batch_one():
    with pytest.raises(T.TimingError, match="at batch size 2 .* not even batch size 1 fits"):
        T.time_model(Greedy(limit=0), batch_size=2, image_size=4, device="cpu", warmup=0,
                     iters=1)


def test_what_counts_as_out_of_memory():
    assert T.runner._is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert T.runner._is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                                  "allocate 10 bytes"))
    assert T.runner._is_oom(MemoryError())
    assert not T.runner._is_oom(RuntimeError("shape mismatch"))
    assert not T.runner._is_oom(ValueError("out of memory"))


# -- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("settings, message", [
    ({"dtype": "tf32"}, "'tf32' needs a CUDA GPU"),
    ({"cuda_graphs": True}, "CUDA graphs need a CUDA GPU"),
    ({"dtype": "fp8"}, "dtype: 'fp8' is not allowed; expected one of fp32, tf32, bf16, fp16"),
    ({"mode": "eval"}, "mode: 'eval' is not allowed"),
    ({"fast": True, "mode": "train"}, "folding BN .* only for inference"),
    ({"batch_size": 0}, "batch_size: 0 is not allowed"),
    ({"iters": 0}, "iters: 0 is not allowed"),
    ({"compile": True, "warmup": 0}, "warmup: 0 is not allowed"),
    ({"device": "tpu"}, "device: 'tpu' is not allowed"),
    ({"cudnn_benchmark": False}, "cudnn_benchmark: False needs a CUDA GPU"),
    ({"cudnn_benchmark": "yes"}, "cudnn_benchmark: 'yes' is not allowed"),
    ({"deadline_s": -1}, "deadline_s: -1 is not allowed; expected None"),
    ({"deadline_s": float("nan")}, "deadline_s: nan is not allowed"),
    ({"deadline_s": True}, "deadline_s: True is not allowed"),
    ({"progress": "bar"}, "progress: 'bar' is not allowed; expected None or a function"),
])
def test_impossible_settings_on_the_cpu_are_refused(settings, message):
    settings = {"device": "cpu", **settings}
    with pytest.raises(T.TimingSettingError, match=message):
        T.time_model(TINY, **settings)


@needs_no_cuda
def test_cuda_without_cuda_is_refused_and_auto_means_cpu():
    with pytest.raises(T.TimingSettingError, match="'cuda' is not available"):
        T.time_model(TINY, device="cuda")
    assert T.resolve_device("auto") == torch.device("cpu")
    assert T.available_devices() == ["cpu"]


def test_time_model_refuses_other_inputs():
    with pytest.raises(TypeError, match="ResNeXtSpec or a torch.nn.Module"):
        T.time_model("resnext50_32x4d", device="cpu")


def test_compile_failure_is_reported(monkeypatch):
    def broken_compile(model, mode=None):
        def call(*args):
            raise RuntimeError("no C compiler (simulated)")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(T.TimingError, match="torch.compile failed: RuntimeError: no C compiler"):
        T.time_model(TINY, batch_size=1, device="cpu", compile=True, warmup=1, iters=1)


@pytest.mark.slow
def test_torch_compile_on_the_cpu():
    result = T.time_model(TINY, batch_size=2, device="cpu", compile=True, fast=True,
                          channels_last=True, warmup=1, iters=2)
    assert result.settings["compile_mode"] == "default"
    assert result.images_per_s == 2 / result.median_ms * 1000
    assert "channels_last + compile + fast" in result.summary()


def test_freeze_turns_on_inductors_freezing_while_the_model_compiles(monkeypatch):
    """freeze=True: every call of the compiled model (its first one compiles) runs with
    torch._inductor.config.freezing on, and it is off again afterwards."""
    import torch._inductor.config as inductor_config

    seen = []

    def recording_compile(model, mode=None):
        def call(*args):
            seen.append(inductor_config.freezing)
            return model(*args)
        return call

    monkeypatch.setattr(torch, "compile", recording_compile)
    result = T.time_model(TINY, batch_size=1, device="cpu", compile=True, freeze=True,
                          warmup=1, iters=2)
    assert seen == [True, True, True] and inductor_config.freezing is False
    # the first call's time (compiling) is kept apart, and it is in no timed iteration
    assert 0 <= result.compile_s < 1.0 and len(result.times_ms) == 2
    assert ("torch.compile: the first warm-up call compiled the model (" in result.summary()
            and "the 2 timed iterations ran the compiled code" in result.summary())
    assert result.settings["freeze"] is True and "compile + freeze" in result.summary()
    seen.clear()
    T.time_model(TINY, batch_size=1, device="cpu", compile=True, warmup=1, iters=1)
    assert seen == [False, False]
    eager = T.time_model(TINY, batch_size=1, device="cpu", warmup=1, iters=1)
    assert eager.compile_s is None and "torch.compile" not in eager.summary()


@pytest.mark.parametrize("settings, message", [
    ({"freeze": True}, "^freeze: freezing is a torch.compile"),
    ({"freeze": True, "compile": True, "mode": "train"}, "^freeze: .* inference only"),
    ({"freeze": "yes", "compile": True}, "^freeze: 'yes' is not allowed"),
])
def test_freeze_is_refused_where_it_does_not_hold(settings, message):
    with pytest.raises(T.TimingSettingError, match=message):
        T.time_model(TINY, batch_size=1, device="cpu", warmup=1, iters=1, **settings)


def test_cli_freeze_without_compile_exits_2(capsys):
    assert main(["time", *TINY_ARGS, "--device", "cpu", "--freeze"]) == 2
    assert "freeze: freezing is a torch.compile (Inductor) setting; add compile" in (
        capsys.readouterr().err)


@pytest.mark.slow
def test_torch_compile_with_freezing_on_the_cpu():
    """A real compile with Inductor's freezing (the CPU's fastest inference mode)."""
    result = T.time_model(TINY, batch_size=2, device="cpu", compile=True, freeze=True,
                          channels_last=True, warmup=1, iters=2)
    assert result.settings["freeze"] is True and result.settings["compile_mode"] == "default"
    assert result.images_per_s == 2 / result.median_ms * 1000


# -- forms side by side ------------------------------------------------------------------------
def test_time_forms_returns_a_b_c_of_the_same_spec():
    results = T.time_forms(TINY, batch_size=2, device="cpu", warmup=0, iters=1)
    assert [r.name for r in results] == [f"{TINY.name} form ({f})" for f in "abc"]
    assert [r.settings["spec"]["form"] for r in results] == ["a", "b", "c"]
    assert {r.macs_per_image for r in results} == {network_counts(TINY).macs}
    lines = T.format_table(results).splitlines()
    assert lines[0].split()[:3] == ["model", "median", "ms"] and len(lines) == 5
    for line, r in zip(lines[2:], results, strict=True):  # speed relative to form (c)
        assert line.startswith(r.name)
        assert f" {r.images_per_s / results[-1].images_per_s:.2f}x" in line
    assert " 1.00x" in lines[-1]


def test_one_block_forms_share_weights_and_macs():
    spec = PRESETS["resnext50_32x4d"].replace(cardinality=4)
    modules, shape, macs = T.one_block(spec, stage=0)
    plan = stage_plans(spec)[0]
    assert shape == (256, 56, 56)
    assert macs == block_counts(spec, plan, first=False).macs
    x = torch.randn(1, *shape)
    with torch.no_grad():
        outputs = {form: m.eval()(x) for form, m in modules.items()}
    for form in "ab":
        assert T.relative_error(outputs["c"], outputs[form]) <= 1e-5
    with pytest.raises(T.TimingSettingError, match="stage 4 is not allowed"):
        T.one_block(spec, stage=4)


def test_time_forms_of_one_block():
    results = T.time_forms(TINY, block=1, batch_size=1, device="cpu", warmup=0, iters=1)
    plan = stage_plans(TINY)[1]
    assert [r.name for r in results] == [f"{TINY.name} conv3 block form ({f})" for f in "abc"]
    assert results[0].settings["input_shape"] == [plan.out_channels, plan.size_out,
                                                  plan.size_out]
    assert results[0].macs_per_image == block_counts(TINY, plan, first=False).macs


# -- estimate ----------------------------------------------------------------------------------
def cpu_key(dtype="fp32"):
    return ("cpu", dtype, torch.get_num_threads())


def test_estimate_seconds_is_linear_in_iterations_and_slower_for_form_a(monkeypatch):
    monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), 0.05)
    spec = PRESETS["resnext50_32x4d"]
    ten = T.estimate_seconds(spec, 8, device="cpu", iters=10, warmup=0)
    twenty = T.estimate_seconds(spec, 8, device="cpu", iters=20, warmup=0)
    assert twenty == pytest.approx(2 * ten)  # measured peak cached: no overhead
    per_iter = ten / 10
    flops = 2 * network_counts(spec).macs * 8
    assert per_iter > flops / 0.05e12  # never faster than the matmul peak
    form_a = T.estimate_seconds(spec.replace(form="a"), 8, device="cpu", iters=10, warmup=0)
    assert form_a > 5 * ten  # form (a) is far slower per multiply-add
    train = T.estimate_seconds(spec, 8, device="cpu", mode="train", iters=10, warmup=0)
    assert train == pytest.approx(3 * ten)
    forms = T.estimate_seconds(spec, 8, device="cpu", iters=10, warmup=0, forms=True)
    form_b = T.estimate_seconds(spec.replace(form="b"), 8, device="cpu", iters=10, warmup=0)
    assert forms == pytest.approx(form_a + form_b + ten)
    # compile needs a warm-up call (TimingSettings refuses warmup=0): 1 + 9 iterations, as 0 + 10
    compiled = T.estimate_seconds(spec, 8, device="cpu", iters=9, warmup=1, compile=True)
    calls = T.estimate._module_calls(spec, spec.form)
    assert compiled == pytest.approx(ten + 12.0 + 0.051 * calls)  # the fit in RESULTS.md


def test_estimate_form_efficiency_grows_with_the_path_width():
    for device in ("cpu", "cuda"):
        dense = registry.FORMS["c"].efficiency[device]
        for form in "ab":
            at4 = registry.FORMS[form].efficiency[device]
            assert T.estimate._efficiency(device, form, 4) == at4  # as measured at d=4
            assert T.estimate._efficiency(device, form, 16) == pytest.approx(2 * at4)  # d ** 0.5
            assert T.estimate._efficiency(device, form, 1) == pytest.approx(at4 / 2)
            assert T.estimate._efficiency(device, form, 10**6) == dense  # never above form (c)
            assert T.estimate._efficiency(device, form, None) == dense  # stem and head
        assert T.estimate._efficiency(device, "c", 4) == dense


def test_estimate_adds_up_stages_at_their_path_widths(monkeypatch):
    monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), 0.2)
    spec = PRESETS["resnext50_32x4d"].replace(form="a")
    counts = network_counts(spec)
    per_iter = 2 * 4 * (counts.stem.macs + counts.head.macs) / (
        0.2e12 * registry.FORMS["c"].efficiency["cpu"])
    for stage in counts.stages:
        per_iter += 2 * 4 * stage.total.macs / (
            0.2e12 * T.estimate._efficiency("cpu", "a", stage.plan.path_width))
    per_iter += T.estimate._module_calls(spec, "a") * T.estimate._PER_CALL_S["cpu"]
    assert T.estimate_seconds(spec, 4, device="cpu", iters=3, warmup=1) == pytest.approx(
        4 * per_iter)
    plan = stage_plans(spec)[1]  # one later block of conv3, as time_forms(block=1) times it
    block = (2 * 4 * block_counts(spec, plan, first=False).macs
             / (0.2e12 * T.estimate._efficiency("cpu", "a", plan.path_width))
             + T.estimate._block_calls(spec, "a") * T.estimate._PER_CALL_S["cpu"])
    assert T.estimate_seconds(spec, 4, device="cpu", iters=3, warmup=1, block=1) == (
        pytest.approx(4 * block))
    with pytest.raises(T.TimingSettingError, match="block: stage 4 is not allowed"):
        T.estimate_seconds(spec, 4, device="cpu", block=4)


def test_estimate_seconds_without_a_measured_peak_assumes_one(monkeypatch):
    monkeypatch.setattr(T.peak, "_PEAK_CACHE", {})
    spec = PRESETS["resnet50"]
    seconds = T.estimate_seconds(spec, 4, device="cpu", iters=3, warmup=1, measure=False)
    assert T.peak._PEAK_CACHE == {}  # nothing measured
    flops = 2 * network_counts(spec).macs * 4
    peak = max(T.estimate._ASSUMED_PEAK_TFLOPS["cpu"]["fp32"],
               T.estimate._PEAK_FLOOR_TFLOPS["cpu"]["fp32"] * torch.get_num_threads())
    per_iter = (flops / (peak * 1e12 * registry.FORMS["c"].efficiency["cpu"])
                + T.estimate._module_calls(spec, "c") * T.estimate._PER_CALL_S["cpu"])
    assert seconds == pytest.approx(4 * per_iter + T.estimate._PEAK_MEASURE_S)
    with pytest.raises(T.TimingSettingError, match="'tf32' needs a CUDA GPU"):
        T.estimate_seconds(spec, 4, device="cpu", dtype="tf32")


def test_a_peak_measured_under_load_cannot_inflate_the_estimate(monkeypatch):
    """The estimate's peak is never below the documented floor: however low a peak measured
    under load is, the estimate stays what it is at the floor."""
    spec = PRESETS["resnext29_8x64d"].replace(image_size=32)
    floor = T.estimate._PEAK_FLOOR_TFLOPS["cpu"]["fp32"] * torch.get_num_threads()
    monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), floor)
    at_floor = T.estimate_seconds(spec, 1, device="cpu", iters=5, warmup=0, forms=True)
    for loaded in (floor / 10, floor / 1000):
        monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), loaded)
        assert T.estimate_seconds(spec, 1, device="cpu", iters=5, warmup=0,
                                  forms=True) == at_floor
    monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), 10 * floor)  # a faster CPU: shorter
    assert T.estimate_seconds(spec, 1, device="cpu", iters=5, warmup=0, forms=True) < at_floor


# -- the command line --------------------------------------------------------------------------
def test_cli_time_json(capsys):
    code = main(["time", *TINY_ARGS, "--batch", "2", "--device", "cpu", "--iters", "2",
                 "--warmup", "0", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["batch_size"] == 2 and data["device_type"] == "cpu"
    assert data["images_per_s"] == 2 / data["median_ms"] * 1000
    assert data["settings"]["spec"] == TINY.to_dict()


def test_cli_time_forms_text(capsys):
    code = main(["time", *TINY_ARGS, "--batch", "1", "--device", "cpu", "--iters", "1",
                 "--warmup", "0", "--forms"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Forms side by side" in out
    assert all(f"form ({f})" in out for f in "abc")


@pytest.mark.parametrize("options, message", [
    (["--dtype", "tf32"], "'tf32' needs a CUDA GPU"),
    (["--cuda-graphs"], "CUDA graphs need a CUDA GPU"),
    (["--fast", "--mode", "train"], "only for inference"),
    (["--no-cudnn-benchmark"], "cudnn_benchmark: False needs a CUDA GPU"),
])
def test_cli_gpu_only_options_on_the_cpu_exit_2(capsys, options, message):
    code = main(["time", *TINY_ARGS, "--device", "cpu", *options])
    assert code == 2
    assert message in capsys.readouterr().err


@needs_no_cuda
def test_cli_cuda_without_cuda_exits_2(capsys):
    assert main(["time", *TINY_ARGS, "--device", "cuda"]) == 2
    assert "'cuda' is not available" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (["--preset", "resnext101_64x4d", "--batch", "64"],
     "multiply-adds estimated for a batch of 64 at 224x224, the limit is"),
    ([*TINY_ARGS, "--batch", "300"],
     "batch_size: 300 is not allowed; expected a whole number from 1 to 256"),
])
def test_cli_time_checks_the_guards_before_building(capsys, monkeypatch, options, message):
    def no_building(spec):
        raise AssertionError("built before the guards were checked")

    monkeypatch.setattr(T.api, "build_model", no_building)
    assert main(["time", *options, "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err


def test_timing_imports_with_torch_alone():
    """The GPU machine has torch and torchvision only: builder.timing must not pull in Gradio,
    torchinfo or graphviz (imported here without builder/__init__, as the benchmark does)."""
    root = Path(__file__).resolve().parents[1]
    code = ("import sys, types; pkg = types.ModuleType('builder'); "
            f"pkg.__path__ = [{str(root / 'builder')!r}]; sys.modules['builder'] = pkg; "
            "import builder.timing; "
            "print(sorted(m for m in ('gradio', 'torchinfo', 'graphviz') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": ""}).stdout
    assert out.strip() == "[]"


# -- the peak --------------------------------------------------------------------------------
def test_the_cpu_peak_is_cached_per_thread_count(monkeypatch):
    monkeypatch.setattr(T.peak, "_PEAK_CACHE", {})
    monkeypatch.setattr(T.peak, "_matmul_ms", lambda device, dtype, size, count: [100.0] * count)
    monkeypatch.setattr(T.peak, "_conv_gemm_ms",
                        lambda device, dtype, size, count: [100.0] * count)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = T.matmul_peak_tflops("cpu")
        torch.set_num_threads(2)
        two = T.matmul_peak_tflops("cpu")
    finally:
        torch.set_num_threads(threads)
    # 100 ms is long enough at the first size, 256: 2 x 256^3 flops in 0.1 s; oneDNN's 1x1
    # convolution over 64x64 with 1024 channels does 2 x 4096 x 1024^2 in the same 0.1 s
    details = T.peak.PEAK_DETAILS[("cpu", "fp32", 1)]
    assert details["torch.mm 256x256"] == 2 * 256**3 / 0.1 / 1e12
    assert one == two == 2 * 4096 * 1024**2 / 0.1 / 1e12 == max(details.values())
    assert set(T.peak._PEAK_CACHE) == {("cpu", "fp32", 1), ("cpu", "fp32", 2)}


def test_a_peak_measured_under_load_is_measured_again(monkeypatch):
    """A result above the cached peak measures the peak again and keeps the larger, so that
    % of peak is not above 100% only because the first measurement ran in a busy moment."""
    monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), 1e-9)
    monkeypatch.setattr(T.peak, "_MEASURED_AT", {})  # not measured lately
    monkeypatch.setattr(T.peak, "_measure_peak", lambda dev, dtype: {"torch.mm": 1e9})
    result = T.time_model(TINY, batch_size=1, device="cpu", warmup=0, iters=1)
    assert result.peak_tflops == 1e9 == T.peak._PEAK_CACHE[cpu_key()]
    assert result.peak_percent < 100 and not any("above the peak" in n for n in result.notes)
    monkeypatch.setattr(T.peak, "_MEASURED_AT", {})
    monkeypatch.setattr(T.peak, "_measure_peak", lambda dev, dtype: {"torch.mm": 1.0})
    assert T.peak.refresh_peak("cpu") == 1e9  # a lower measurement does not replace it


def test_the_peak_is_measured_again_at_most_once_a_minute(monkeypatch):
    measured = []
    monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), 1.0)
    monkeypatch.setattr(T.peak, "_MEASURED_AT", {})
    monkeypatch.setattr(T.peak, "_measure_peak",
                        lambda dev, dtype: measured.append(1) or {"torch.mm": 2.0 * len(measured)})
    now = {"t": 1000.0}
    monkeypatch.setattr(T.peak, "_real_clock", lambda: now["t"])
    assert T.peak.refresh_peak("cpu") == 2.0 and len(measured) == 1
    now["t"] += T.peak.REFRESH_EVERY_S - 1  # 59 s later: the cached peak, not measured
    assert T.peak.refresh_peak("cpu") == 2.0 and len(measured) == 1
    now["t"] += 1  # a minute after the last measurement: measured again, the larger kept
    assert T.peak.refresh_peak("cpu") == 4.0 and len(measured) == 2


@pytest.mark.parametrize("peak, noted", [(1e-9, True), (1e9, False)])
def test_a_result_above_the_measured_peak_says_so(monkeypatch, peak, noted):
    monkeypatch.setitem(T.peak._PEAK_CACHE, cpu_key(), peak)
    monkeypatch.setattr(T.peak, "refresh_peak", lambda device, dtype: peak)  # still as low
    result = T.time_model(TINY, batch_size=1, device="cpu", warmup=0, iters=1)
    assert result.peak_tflops == peak
    assert result.peak_percent == result.tflops / peak * 100
    assert (result.peak_percent > 100) == noted
    notes = [n for n in result.notes if n.startswith("above the peak: ")]
    assert len(notes) == int(noted)
    if noted:
        assert f"{result.peak_percent:.0f}% of the 1e-09 TFLOP/s matmul peak" in notes[0]
        assert "measured while other work loaded the machine" in notes[0]
        assert notes[0] in result.summary()


# -- progress, the time limit, the wall clock -------------------------------------------------
def test_stopwatch_reads_the_wall_clock(monkeypatch):
    monkeypatch.setattr(T.clock, "_clock", lambda: CLOCK["t"])
    CLOCK["t"] = 5.0
    elapsed = T.stopwatch()
    CLOCK["t"] = 7.5
    assert elapsed() == 2.5


def check_progress(calls):
    fractions = [f for f, _ in calls]
    assert fractions[0] >= 0
    assert all(a <= b for a, b in zip(fractions, fractions[1:], strict=False))
    assert fractions[-1] == 1.0
    assert all(0 <= f <= 1 for f in fractions)


def test_time_model_reports_progress(monkeypatch):
    monkeypatch.setattr(T.peak, "_PEAK_CACHE", {})
    monkeypatch.setattr(T.peak, "matmul_peak_tflops", lambda device, dtype: 1.0)  # not measured
    calls = []
    T.time_model(TINY, batch_size=1, device="cpu", warmup=2, iters=3,
                 progress=lambda fraction, text: calls.append((fraction, text)))
    check_progress(calls)
    texts = [t for _, t in calls]
    assert texts == ["building the model and the batch", "warm-up 1/2", "warm-up 2/2",
                     "iteration 1/3", "iteration 2/3", "iteration 3/3",
                     "measuring the matmul peak", "done"]
    # 2 + 3 iterations and the end: six equal steps
    assert [f for f, _ in calls] == pytest.approx([0, 0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1])


def test_time_forms_reports_progress_naming_the_forms():
    T.matmul_peak_tflops("cpu")  # cached first, so that no "measuring the peak" step is shown
    calls = []
    T.time_forms(TINY, batch_size=1, device="cpu", warmup=1, iters=2,
                 progress=lambda fraction, text: calls.append((fraction, text)))
    check_progress(calls)
    for form, third in zip("abc", (0, 1, 2), strict=True):
        mine = [(f, t) for f, t in calls if t.startswith(f"form ({form}): ")]
        assert [t for _, t in mine][-3:] == [f"form ({form}): iteration 1/2",
                                             f"form ({form}): iteration 2/2",
                                             f"form ({form}): done"]
        assert all(third / 3 <= f <= (third + 1) / 3 + 1e-12 for f, _ in mine)
    assert len(calls) == sum(t.startswith("form (") for _, t in calls)


def test_the_time_limit_stops_between_iterations(monkeypatch):
    """On the fake clock, call n takes n ms: warm-up calls 1 and 2 end at 3 ms, timed call 3 at
    6 ms, past a 4.5 ms limit: the run stops there."""
    T.matmul_peak_tflops("cpu")
    CLOCK["t"] = 100.0
    monkeypatch.setattr(T.clock, "_clock", lambda: CLOCK["t"])
    CALLS.clear()
    with pytest.raises(T.TimingError) as info:
        T.time_model(Recorder(), batch_size=2, image_size=4, device="cpu", warmup=2, iters=5,
                     macs=48, deadline_s=0.0045)
    assert str(info.value) == ("deadline_s: the time limit of 0.0045 s was exceeded (0.006 s "
                               "elapsed) at iteration 1/5; not timed further")
    assert len(CALLS) == 3
    CALLS.clear()  # without a limit the same run goes on to the end
    result = T.time_model(Recorder(), batch_size=2, image_size=4, device="cpu", warmup=2,
                          iters=5, macs=48, deadline_s=None)
    assert len(CALLS) == 7 and len(result.times_ms) == 5


def test_the_time_limit_of_time_forms_is_checked_between_forms(monkeypatch):
    def clock():  # 1 us a reading, and 10 s a form (below)
        CLOCK["t"] += 1e-6
        return CLOCK["t"]

    T.matmul_peak_tflops("cpu")  # measured on the real clock (on this one it would spin)
    monkeypatch.setattr(T.clock, "_clock", clock)
    CLOCK["t"] = 0.0
    real = T.api._time_model
    timed = []

    def ten_seconds_each(run, model, **settings):  # each form takes 10 s of the fake clock
        result = real(run, model, **settings)
        timed.append(result.name)
        CLOCK["t"] += 10.0
        return result

    monkeypatch.setattr(T.api, "_time_model", ten_seconds_each)
    with pytest.raises(T.TimingError, match=r"^deadline_s: the time limit of 15 s was exceeded "
                       r"\(20 s elapsed\) at the start of form \(c\); finished before it: "
                       r"form \(a\), form \(b\); not timed further$"):
        T.time_forms(TINY, batch_size=1, device="cpu", warmup=0, iters=1, deadline_s=15)
    assert timed == [f"{TINY.name} form (a)", f"{TINY.name} form (b)"]


# -- torch.compile's caches, memory after any failure --------------------------------------------
def test_compiled_attempts_reset_the_compiler_before_and_after(monkeypatch):
    events = []

    def fake_compile(model, mode=None):
        events.append(f"compile {mode}")
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(torch.compiler, "reset", lambda: events.append("reset"))
    T.time_model(TINY, batch_size=1, device="cpu", compile=True, warmup=1, iters=1)
    assert events == ["reset", "compile default", "reset"]
    events.clear()
    T.time_model(TINY, batch_size=1, device="cpu", warmup=0, iters=1)  # not compiled
    assert events == []

    def broken_compile(model, mode=None):
        def call(*args):
            raise RuntimeError("no C compiler (simulated)")
        events.append("compile")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(T.TimingError, match="torch.compile failed"):
        T.time_model(TINY, batch_size=1, device="cpu", compile=True, warmup=1, iters=1)
    assert events == ["reset", "compile", "reset"]  # the failed attempt's caches go too


BOOM: list = []  # weak references to the inputs a Boom model saw


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        BOOM.append(weakref.ref(x))
        raise ValueError("a bug in the model (simulated)")


def test_any_failure_gives_the_memory_back_before_it_propagates(monkeypatch):
    released = []
    real = T.runner._release
    monkeypatch.setattr(T.runner, "_release", lambda device, compiled=False: (
        released.append((str(device), compiled)), real(device, compiled)))
    BOOM.clear()
    with pytest.raises(ValueError, match="a bug in the model") as info:
        T.time_model(Boom(), batch_size=2, image_size=4, device="cpu", warmup=1, iters=1)
    assert info.value.__traceback__ is not None  # the error itself propagates, unchanged
    assert released[-1] == ("cpu", False)  # released before it left time_model
    assert BOOM and all(ref() is None for ref in BOOM)  # the batch is gone, the error alive


class CaptureOOM(nn.Module):
    """Fails as a CUDA-graph capture does when it runs out of memory: the allocator's error,
    then the capture's own on leaving torch.cuda.graph, with the first as its context."""

    def __init__(self, limit):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 5)
        self.limit = limit

    def forward(self, x):
        if x.shape[0] > self.limit:
            try:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB "
                                             "(simulated, during capture)")
            except torch.OutOfMemoryError:  # the implicit context is the point here
                raise RuntimeError("CUDA error: operation failed due to a previous "  # noqa: B904
                                   "error during capture")
        return self.fc(x.flatten(1))


def test_an_out_of_memory_during_capture_is_recognised():
    with pytest.raises(T.TimingError) as info:
        T.time_model(CaptureOOM(limit=2), batch_size=8, image_size=4, device="cpu", warmup=0,
                     iters=1)
    assert str(info.value).startswith("out of memory at batch size 8 on ")
    assert "(CUDA out of memory. Tried to allocate 2.00 GiB (simulated, during capture)); " \
           "batch size 2 fits" in str(info.value)
    chained = RuntimeError("CUDA error: operation failed due to a previous error during capture")
    chained.__context__ = torch.OutOfMemoryError("CUDA out of memory")
    assert T.runner._oom_in(chained) is chained.__context__
    assert T.runner._is_oom(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
                                  "cublasCreate(handle)"))
    assert not T.runner._is_oom(RuntimeError("CUDA error: operation not permitted when stream is "
                                      "capturing"))


# -- precision flags, device memory -------------------------------------------------------------
def test_numerics_restore_the_matmul_precision_and_the_legacy_flags():
    """The flags are process-wide and settable without a GPU: _numerics for a CUDA device sets
    and restores them (nothing here runs on a GPU)."""
    cuda = torch.device("cuda", 0)
    original = T.devices._precision_flags()
    try:
        for before in ("medium", "high", "highest"):
            torch.set_float32_matmul_precision(before)
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = False
            saved = T.devices._precision_flags()
            for dtype, tf32 in (("fp32", False), ("tf32", True), ("bf16", False)):
                with T.devices._numerics(cuda, dtype, cudnn_benchmark=True):
                    assert torch.get_float32_matmul_precision() == (
                        "high" if tf32 else "highest")
                    assert torch.backends.cuda.matmul.allow_tf32 is tf32
                    assert torch.backends.cudnn.allow_tf32 is tf32
                    assert torch.backends.cudnn.benchmark is True
                assert T.devices._precision_flags() == saved
                assert torch.get_float32_matmul_precision() == before
        if hasattr(torch.backends.cudnn, "conv"):  # torch 2.9+: the per-backend API
            torch.backends.cuda.matmul.fp32_precision = "tf32"
            torch.backends.cudnn.conv.fp32_precision = "tf32"
            with T.devices._numerics(cuda, "fp32"):
                assert torch.backends.cuda.matmul.fp32_precision == "ieee"
            assert torch.backends.cuda.matmul.fp32_precision == "tf32"
            assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    finally:
        T.devices._restore_precision_flags(original)
        torch.set_float32_matmul_precision(original["float32_matmul_precision"] or "highest")


def test_device_total_memory_on_the_cpu(monkeypatch, tmp_path):
    pages = {"SC_PHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(T.devices.os, "sysconf", lambda name: pages[name])
    monkeypatch.setattr(T.devices, "_CGROUP_MEMORY_MAX", str(tmp_path / "absent"))
    assert T.device_total_memory("cpu") == 4096 * 1000
    limit = tmp_path / "memory.max"
    limit.write_text("1000000\n")
    monkeypatch.setattr(T.devices, "_CGROUP_MEMORY_MAX", str(limit))
    assert T.device_total_memory("cpu") == 1000000  # the container's limit is lower
    limit.write_text("max\n")
    assert T.device_total_memory("cpu") == 4096 * 1000  # no limit

    def no_sysconf(name):
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(T.devices.os, "sysconf", no_sysconf)
    assert T.device_total_memory("cpu") is None
    limit.write_text("2048\n")
    assert T.device_total_memory("cpu") == 2048


# -- GPU ---------------------------------------------------------------------------------------
@needs_cuda
def test_gpu_timing_records_memory_and_restores_flags():
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision())
    result = T.time_model(TINY, batch_size=4, device="cuda", warmup=2, iters=5)
    assert result.device_type == "cuda"
    assert result.device_name == torch.cuda.get_device_name()
    assert result.peak_memory_bytes > 0
    assert result.settings["timer"] == "CUDA events" and result.settings["tf32"] is False
    assert result.images_per_s == 4 / result.median_ms * 1000
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()) == flags
    assert result.settings["cudnn_benchmark"] is True  # the default on a GPU


@needs_cuda
@pytest.mark.parametrize("settings", [
    {"dtype": "tf32"},
    {"dtype": "bf16", "channels_last": True, "fast": True},
    {"dtype": "fp16", "cuda_graphs": True},
    {"dtype": "bf16", "cuda_graphs": True, "mode": "train"},
    {"dtype": "fp16", "mode": "train"},
])
def test_gpu_settings(settings):
    result = T.time_model(TINY, batch_size=4, device="cuda", warmup=2, iters=3, **settings)
    assert {k: result.settings[k] for k in settings} == settings
    assert len(result.times_ms) == 3 and result.peak_percent > 0


@needs_cuda
def test_gpu_out_of_memory_is_caught_and_the_next_call_works():
    free, _ = torch.cuda.mem_get_info()
    before = torch.cuda.memory_allocated()
    huge = free // (64 * 512 * 512 * 4) + 1  # one 64-channel activation exceeds free memory
    with pytest.raises(T.TimingError, match=f"out of memory at batch size {huge}"):
        T.time_model(TINY, batch_size=huge, image_size=512, device="cuda", warmup=0, iters=1)
    assert torch.cuda.memory_allocated() == before
    assert T.time_model(TINY, batch_size=2, device="cuda", warmup=0, iters=1).batch_size == 2


@needs_cuda
def test_gpu_cuda_0_explicitly_records_the_gpu():
    result = T.time_model(TINY, batch_size=2, device="cuda:0", warmup=1, iters=2,
                          cudnn_benchmark=False)
    s = result.settings
    assert s["device"] == "cuda:0" and result.device_name == torch.cuda.get_device_name(0)
    assert s["cudnn_benchmark"] is False
    assert s["cuda_version"] == torch.version.cuda
    assert s["cudnn_version"] == torch.backends.cudnn.version()
    total = torch.cuda.get_device_properties(0).total_memory
    assert s["device_total_memory_bytes"] == total == T.device_total_memory("cuda:0")
    assert result.to_dict()["settings"]["device_total_memory_bytes"] == total


@needs_cuda
def test_gpu_compile():
    result = T.time_model(TINY, batch_size=4, device="cuda", compile=True, warmup=2, iters=3)
    assert result.settings["compile_mode"] == "default" and len(result.times_ms) == 3
    assert result.images_per_s == 4 / result.median_ms * 1000


@needs_cuda
def test_gpu_compile_with_cuda_graphs_uses_them():
    result = T.time_model(TINY, batch_size=4, device="cuda", compile=True, cuda_graphs=True,
                          warmup=3, iters=3)
    assert result.settings["compile_mode"] == "reduce-overhead"
    assert result.settings["cudagraph_skips"] == 0  # torch.compile did not decline them
    assert len(result.times_ms) == 3


@needs_cuda
def test_gpu_bf16_channels_last():
    result = T.time_model(TINY, batch_size=4, device="cuda", dtype="bf16", channels_last=True,
                          warmup=2, iters=3)
    assert result.settings["autocast"] == "bfloat16"
    assert result.settings["channels_last"] is True and result.settings["tf32"] is False
    key = (str(T.resolve_device("cuda")), "bf16", None)
    assert result.peak_tflops == T.peak._PEAK_CACHE[key]


@needs_cuda
def test_gpu_cuda_graph_training_step_is_a_real_step():
    """Each replay of the captured training step computes the gradients afresh (equal to an
    eager step's from the same weights, not added to the last ones) and updates the weights."""
    dev = T.resolve_device("cuda")
    torch.manual_seed(0)
    model = randomize_(build_model(TINY)).to(dev).train()
    twin = randomize_(build_model(TINY)).to(dev).train()
    plan = T.runner._Plan(dev, "fp32", False, True, False, True, "train", False, 1, 1, 0,
                          (3, 16, 16), 10, False)
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(4, 3, 16, 16, generator=generator).to(dev)
    with T.devices._on_device(dev), T.devices._numerics(dev, "fp32"):
        step, labels = T.runner._train_step(model, batch, plan, generator)  # 3 steps, then capture
        for _ in range(2):
            twin.load_state_dict(model.state_dict())  # identical weights
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            step()
            torch.cuda.synchronize(dev)
            twin.zero_grad(set_to_none=True)
            T.runner._loss(twin(batch), labels).backward()
            for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters(),
                                         strict=True):
                scale = q.grad.abs().max().item()
                assert (p.grad - q.grad).abs().max().item() <= 1e-4 * scale + 1e-7, name
                assert not torch.equal(p.detach(), before[name]), name  # the step updated it


@needs_cuda
def test_gpu_timer_agrees_with_cuda_events():
    spec = PRESETS["resnext50_32x4d"].replace(image_size=128)
    result = T.time_model(spec, batch_size=32, device="cuda", dtype="bf16", channels_last=True,
                          warmup=5, iters=20, cross_check=True)
    assert 0.85 <= result.check_ratio <= 1.15, (result.median_ms, result.check_median_ms)


@needs_cuda
def test_gpu_percent_of_peak_is_at_most_100_in_bf16():
    result = T.time_model(PRESETS["wide_resnet50_2"], batch_size=64, device="cuda",
                          dtype="bf16", channels_last=True, warmup=3, iters=5)
    assert 0 < result.peak_percent <= 100
    assert not any(note.startswith("above the peak") for note in result.notes)


@pytest.mark.skipif(not HAS_CUDA or torch.cuda.device_count() < 2,
                    reason="needs two CUDA GPUs; this machine has fewer")
def test_gpu_the_second_gpu_keeps_everything_on_it():
    current = torch.cuda.current_device()
    on_first = torch.cuda.memory_allocated(0)
    for settings in ({}, {"cuda_graphs": True}, {"cross_check": True},
                     {"cuda_graphs": True, "mode": "train", "dtype": "bf16"}):
        result = T.time_model(TINY, batch_size=2, device="cuda:1", warmup=1, iters=2,
                              **settings)
        assert result.settings["device"] == "cuda:1" and len(result.times_ms) == 2
        assert result.device_name == torch.cuda.get_device_name(1)
    assert ("cuda:1", "fp32", None) in T.peak._PEAK_CACHE
    assert torch.cuda.current_device() == current
    assert torch.cuda.memory_allocated(0) == on_first
