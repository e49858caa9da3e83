"""Honest timing of a spec or a model on one random batch: the only module that touches devices
and clocks.

What "honest" means here, as `torch.utils.benchmark` and nanoGPT's `bench.py` do it:
- the batch is drawn once from a seeded normal distribution (never zeros) and reused;
- warm-up iterations (which compile, pick cuDNN algorithms, fill caches) are not timed;
- on a GPU each iteration is timed by a pair of CUDA events and the host synchronises before
  reading them; on the CPU by `time.perf_counter` around each (synchronous) iteration;
- the median is reported with min, max and the interquartile range, and a result whose IQR
  reaches 10% of the median is flagged `noisy`, as `torch.utils.benchmark.Measurement` does;
- achieved TFLOP/s come from the analytic multiply-adds (`builder.complexity`), and are put
  against this device's own matrix-multiply peak in the same dtype, measured once per process
  (and, on the CPU, per thread count);
- on a GPU other than the current one (cuda:1, ...) every event, stream, graph capture and
  synchronisation runs inside `torch.cuda.device(that GPU)`; one run (or peak measurement) at a
  time per GPU in a process, since another thread's work would invalidate a graph capture;
- every attempt, failed or not, gives its memory back (and torch.compile's caches:
  `torch.compiler.reset()` before and after a compiled attempt).

`time_model` and `time_forms` take `progress(fraction, text)` (for a progress bar) and
`deadline_s` (a hard limit, checked between iterations and between forms). `stopwatch()` is the
wall clock for the rest of builder/: only this module touches devices and clocks.

Only `torch` is needed: the GPU machines that run the benchmark have no Gradio.

    >>> from builder import PRESETS, time_model
    >>> result = time_model(PRESETS["resnet18"].replace(image_size=64), batch_size=4,
    ...                     device="cpu", iters=5)
    >>> result.images_per_s == result.batch_size / result.median_ms * 1000
    True
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import json
import math
import os
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import blocks as B
from ..complexity import block_counts, network_counts
from ..convert import convert, dense_state, load_dense_state, randomize_
from ..network import build_model, stage_plans
from ..spec import ResNeXtSpec

# dtype setting -> (weights and inputs, autocast dtype or None). "tf32" runs fp32 tensors with
# TensorFloat-32 tensor cores (NVIDIA Ampere and later) for matmuls and convolutions.
DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MODES = ("inference", "train")
GPU_ONLY_DTYPES = ("tf32",)
NOISE_THRESHOLD = 0.10  # IQR / median at which torch.utils.benchmark warns
# A BN-folded model must agree with the original within these relative errors
# (max |difference| / max |original output|) in the dtype it is timed in.
FOLD_TOLERANCE = {"fp32": 1e-4, "tf32": 1e-2, "bf16": 5e-2, "fp16": 1e-2}
# Defaults for warm-up and timed iterations, per device type.
DEFAULT_WARMUP = {"cpu": 2, "cuda": 10}
DEFAULT_ITERS = {"cpu": 10, "cuda": 50}
TRAIN_FLOP_FACTOR = 3  # forward + backward (about twice the forward): the usual convention


class TimingError(RuntimeError):
    """A timing run that failed: out of memory, a failed compile, a failed fold check."""


class TimingSettingError(ValueError):
    """A setting this machine cannot honour: a GPU-only option on the CPU, no CUDA, bad values."""


# -- statistics ------------------------------------------------------------------------------
def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values with linear interpolation (numpy's and torch.quantile's
    default, which torch.utils.benchmark uses)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass(frozen=True)
class Stats:
    """Summary of per-iteration times in milliseconds."""

    median: float
    min: float
    max: float
    q1: float  # 25th percentile
    q3: float  # 75th percentile

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def noisy(self) -> bool:
        """IQR at or above 10% of the median: torch.utils.benchmark's warning threshold."""
        return self.iqr >= NOISE_THRESHOLD * self.median


def summarize(times_ms: Sequence[float]) -> Stats:
    values = sorted(float(t) for t in times_ms)
    if not values:
        raise ValueError("summarize: no times")
    return Stats(quantile(values, 0.5), values[0], values[-1], quantile(values, 0.25),
                 quantile(values, 0.75))


# -- devices ---------------------------------------------------------------------------------
def available_devices() -> list[str]:
    """Devices this process can time on: "cpu", then "cuda" (the first GPU) and "cuda:1"...
    for any further GPUs."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
        devices += [f"cuda:{i}" for i in range(1, torch.cuda.device_count())]
    return devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> the first GPU when CUDA is available, else the CPU. Asking for CUDA on a
    machine without it raises TimingSettingError saying why."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TimingSettingError(f"device: {device!r} is not allowed; expected auto, cpu or cuda")
    if device == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
            else torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise TimingSettingError(
            f"device: {device!r} is not allowed; expected auto, cpu or cuda") from None
    if resolved.type == "cpu":
        return torch.device("cpu")
    if resolved.type != "cuda":
        raise TimingSettingError(
            f"device: {device!r} is not allowed; expected auto, cpu or cuda")
    if not torch.cuda.is_available():
        why = ("this torch is a CPU-only build" if torch.version.cuda is None
               else "torch.cuda.is_available() is False (no GPU or driver visible)")
        raise TimingSettingError(f"device: {device!r} is not available: {why}; "
                                 "use --device cpu or auto")
    index = torch.cuda.current_device() if resolved.index is None else resolved.index
    if index >= torch.cuda.device_count():
        raise TimingSettingError(f"device: {device!r} is not available: this machine has "
                                 f"{torch.cuda.device_count()} GPU(s)")
    return torch.device("cuda", index)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and the number of threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    return f"{model}, {torch.get_num_threads()} threads"


# Where the CPU's memory may be capped below the machine's (a container's cgroup v2 limit).
_CGROUP_MEMORY_MAX = "/sys/fs/cgroup/memory.max"


def device_total_memory(device: str | torch.device = "auto") -> int | None:
    """Bytes of memory on `device`: a GPU's total memory
    (torch.cuda.get_device_properties(i).total_memory); on the CPU the host's physical memory
    (os.sysconf pages x page size), or the container's cgroup limit where that is lower; None
    where the host does not say."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev.index).total_memory)
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not a POSIX host, or no such names
        total = None
    if total is not None and total <= 0:
        total = None
    with contextlib.suppress(OSError, ValueError):
        with open(_CGROUP_MEMORY_MAX, encoding="ascii") as handle:
            text = handle.read().strip()
        if text != "max":  # "max": no limit
            limit = int(text)
            total = limit if total is None else min(total, limit)
    return total


def _on_device(device: torch.device):
    """`torch.cuda.device(device)` on a GPU, so that events, streams, graph captures and the
    Timer's synchronisation act on it and not on the current GPU; nothing on the CPU."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


# One user of each GPU at a time in this process: a CUDA-graph capture is invalidated by
# another thread's synchronisation or fresh allocation on the same GPU (the capture's default
# "global" mode), which a concurrent peak measurement or attempt would do.
_GPU_LOCKS: dict[str, threading.RLock] = {}


def _gpu_lock(device: torch.device):
    """The lock of this GPU (a null context on the CPU, where concurrent runs only slow each
    other down)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return _GPU_LOCKS.setdefault(str(device), threading.RLock())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_compiler() -> None:
    """Drop torch.compile's process-wide caches (compiled code, guards, CUDA-graph trees and
    their memory pools): a long-running process times many models, and Dynamo falls back to
    eager, with only a warning, once a function has been recompiled too often."""
    torch.compiler.reset()


def _release(device: torch.device, compiled: bool = False) -> None:
    """Give back what a finished or failed attempt held (and torch.compile's caches, after a
    compiled attempt)."""
    if compiled:
        _reset_compiler()
    gc.collect()
    if device.type == "cuda":
        with _on_device(device):
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)


def _read_flag(get: Callable[[], object]):
    """A precision flag, or None where this torch has no such flag or refuses to read it
    (torch 2.9+ raises when the legacy and the new TF32 APIs were mixed)."""
    try:
        return get()
    except (AttributeError, RuntimeError):
        return None


def _precision_flags() -> dict:
    return {
        "float32_matmul_precision": _read_flag(torch.get_float32_matmul_precision),
        "matmul_allow_tf32": _read_flag(lambda: torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": _read_flag(lambda: torch.backends.cudnn.allow_tf32),
        "matmul_fp32_precision": _read_flag(lambda: torch.backends.cuda.matmul.fp32_precision),
        "conv_fp32_precision": _read_flag(lambda: torch.backends.cudnn.conv.fp32_precision),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


def _restore_precision_flags(saved: dict) -> None:
    """Put back what _precision_flags read: the legacy flags, then
    torch.set_float32_matmul_precision, then (torch 2.9+) the per-backend fp32_precision
    values where they differ, so that a caller's setting survives through either API."""
    torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
    if saved["matmul_allow_tf32"] is not None:
        torch.backends.cuda.matmul.allow_tf32 = saved["matmul_allow_tf32"]
    if saved["cudnn_allow_tf32"] is not None:
        torch.backends.cudnn.allow_tf32 = saved["cudnn_allow_tf32"]
    if saved["float32_matmul_precision"] is not None:
        torch.set_float32_matmul_precision(saved["float32_matmul_precision"])
    for name, get, put in (
            ("matmul_fp32_precision", lambda: torch.backends.cuda.matmul.fp32_precision,
             lambda v: setattr(torch.backends.cuda.matmul, "fp32_precision", v)),
            ("conv_fp32_precision", lambda: torch.backends.cudnn.conv.fp32_precision,
             lambda v: setattr(torch.backends.cudnn.conv, "fp32_precision", v))):
        if saved[name] is not None and _read_flag(get) != saved[name]:
            put(saved[name])


@contextlib.contextmanager
def _numerics(device: torch.device, dtype: str, cudnn_benchmark: bool = True):
    """TF32 on or off as `dtype` asks, and cudnn.benchmark, for the duration; restored after.
    (PyTorch enables TF32 convolutions by default: "fp32" here turns them off.) Matmuls are set
    through torch.set_float32_matmul_precision ("high" = TF32, "highest" = full fp32), which
    keeps the legacy and the new flags consistent (torch.compile reads the former)."""
    if device.type != "cuda":
        yield
        return
    saved = _precision_flags()
    tf32 = dtype == "tf32"
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    try:
        yield
    finally:
        _restore_precision_flags(saved)


def _autocast(device: torch.device, dtype: str, cache_enabled: bool = True):
    """A factory of autocast contexts for bf16/fp16, of null contexts for fp32/tf32."""
    low = DTYPES[dtype]
    if low is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=low, cache_enabled=cache_enabled)


_clock = time.perf_counter  # the host's wall clock (a test may replace it)


def stopwatch() -> Callable[[], float]:
    """Start a wall clock (time.perf_counter): the function returned gives the seconds since.

        >>> elapsed = stopwatch()
        >>> elapsed() >= 0
        True
    """
    begin = _clock()
    return lambda: _clock() - begin


def _time_calls(fn: Callable[[], object], device: torch.device, count: int,
                between: Callable[[int], None] | None = None) -> list[float]:
    """Milliseconds of each of `count` calls: CUDA events (read after one synchronisation at
    the end) on a GPU, time.perf_counter on the CPU. `between(i)` runs after call i, outside
    the timed span (the progress report and the time limit)."""
    if device.type == "cuda":
        with _on_device(device):
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
            torch.cuda.synchronize(device)
            for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
                start.record()
                fn()
                end.record()
                if between is not None:
                    between(i)
            torch.cuda.synchronize(device)
            return [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]
    times = []
    for i in range(count):
        begin = _clock()
        fn()
        times.append((_clock() - begin) * 1e3)
        if between is not None:
            between(i)
    return times


# -- the device's own peak ---------------------------------------------------------------------
# (device, dtype, torch threads on the CPU or None) -> TFLOP/s, measured once per process
_PEAK_CACHE: dict[tuple[str, str, int | None], float] = {}


def _peak_key(device: torch.device, dtype: str) -> tuple[str, str, int | None]:
    """The peak's cache key: a CPU's peak depends on how many threads torch uses."""
    return str(device), dtype, torch.get_num_threads() if device.type == "cpu" else None


def _matmul_ms(device: torch.device, dtype: torch.dtype, size: int, count: int) -> list[float]:
    """Milliseconds of `count` products of two random size x size matrices, after two more."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device, dtype)
    b = torch.randn(size, size, generator=generator).to(device, dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    _time_calls(lambda: torch.matmul(a, b, out=out), device, 2)
    return _time_calls(lambda: torch.matmul(a, b, out=out), device, count)


def matmul_peak_tflops(device: str | torch.device = "auto", dtype: str = "fp32") -> float:
    """This device's dense matrix-multiply throughput in TFLOP/s for `dtype` (fp32 with TF32
    off, tf32, bf16 or fp16 operands), measured once per process and device (on the CPU, once
    per torch thread count) and cached: the size is doubled until one product takes long
    enough to time, then the best of five. A peak measured while other work loads the machine
    is too low; time_model says so when a result comes out above it."""
    dev = resolve_device(device)
    _check_dtype(dev, dtype)
    key = _peak_key(dev, dtype)
    if key in _PEAK_CACHE:
        return _PEAK_CACHE[key]
    operand = DTYPES[dtype] or torch.float32
    size, largest, enough = (256, 4096, 0.05) if dev.type == "cpu" else (2048, 16384, 0.002)
    with _gpu_lock(dev), _on_device(dev), _numerics(dev, dtype):
        while True:
            seconds = min(_matmul_ms(dev, operand, size, 1)) / 1e3
            if seconds >= enough or size >= largest:
                break
            size *= 2
        best = min(_matmul_ms(dev, operand, size, 5)) / 1e3
        _release(dev)
    _PEAK_CACHE[key] = 2 * size**3 / best / 1e12
    return _PEAK_CACHE[key]


# -- BN folding (the "fast" inference mode) ----------------------------------------------------
def _fold_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN as y = x * scale + shift, in float64."""
    var = bn.running_var.double()
    weight = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    bias = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = weight / torch.sqrt(var + bn.eps)
    return scale, bias - bn.running_mean.double() * scale


def _scaled_conv(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor | None) -> nn.Conv2d:
    """A copy of `conv` with its output channels scaled and `shift` added (as a bias)."""
    if conv.bias is not None:
        shift = conv.bias.double() * scale + (0 if shift is None else shift)
    weight = conv.weight
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, bias=shift is not None,
                    padding_mode=conv.padding_mode, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight.double() * scale.view(-1, 1, 1, 1))
        if shift is not None:
            new.bias.copy_(shift)
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        new.to(memory_format=torch.channels_last)
    return new


def _foldable(conv, bn) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and bn.running_var is not None
            and conv.out_channels == bn.num_features)


def fold_bn(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with each BatchNorm that follows a convolution folded into
    it (w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps), computed in
    float64) and replaced by nn.Identity. Valid for inference only.

    Folded: conv{k} -> bn{k} pairs of a block (builder's and torchvision's names), conv -> BN in
    an nn.Sequential (the projection shortcut), and in form (a) the BN on the aggregated sum,
    folded into every path's last conv (its shift added once, by path 0). `time_model(fast=True)`
    checks the folded model's output against the original before timing it."""
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if isinstance(module, (B.AggregatedBottleneck, B.AggregatedBasicBlock)):
            conv_name, bn_name = (("conv3", "bn3") if isinstance(module, B.AggregatedBottleneck)
                                  else ("conv2", "bn2"))
            bn = getattr(module, bn_name)
            if _foldable(getattr(module.paths[0], conv_name), bn):
                scale, shift = _fold_scale_shift(bn)
                for i, path in enumerate(module.paths):
                    setattr(path, conv_name, _scaled_conv(getattr(path, conv_name), scale,
                                                          shift if i == 0 else None))
                setattr(module, bn_name, nn.Identity())
        for k in (1, 2, 3):
            conv, bn = getattr(module, f"conv{k}", None), getattr(module, f"bn{k}", None)
            if _foldable(conv, bn):
                setattr(module, f"conv{k}", _scaled_conv(conv, *_fold_scale_shift(bn)))
                setattr(module, f"bn{k}", nn.Identity())
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if _foldable(module[i], module[i + 1]):
                    module[i] = _scaled_conv(module[i], *_fold_scale_shift(module[i + 1]))
                    module[i + 1] = nn.Identity()
    return folded


def relative_error(expected: torch.Tensor, got: torch.Tensor) -> float:
    """max |expected - got| / max |expected|, in float64."""
    expected, got = expected.double(), got.double()
    scale = expected.abs().max().item() or 1.0
    return (expected - got).abs().max().item() / scale


# -- settings and results ----------------------------------------------------------------------
def _check_dtype(device: torch.device, dtype: str) -> None:
    if dtype not in DTYPES:
        raise TimingSettingError(f"dtype: {dtype!r} is not allowed; expected one of "
                                 f"{', '.join(DTYPES)}")
    if device.type == "cpu" and dtype in GPU_ONLY_DTYPES:
        raise TimingSettingError(
            "dtype: 'tf32' needs a CUDA GPU (TensorFloat-32 runs on NVIDIA tensor cores, "
            "Ampere and later); on the CPU use fp32, bf16 or fp16")


def _check_count(name: str, value, lowest: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise TimingSettingError(f"{name}: {value!r} is not allowed; expected a whole number "
                                 f"from {lowest}")


def _check_freeze(freeze, compile, mode) -> None:
    if freeze not in (True, False):
        raise TimingSettingError(f"freeze: {freeze!r} is not allowed; expected True or False")
    if freeze and not compile:
        raise TimingSettingError("freeze: freezing is a torch.compile (Inductor) setting; "
                                 "add compile")
    if freeze and mode == "train":
        raise TimingSettingError("freeze: freezing treats the weights as constants, which "
                                 "holds for inference only; use mode='inference'")


def _check_deadline(deadline_s) -> None:
    if deadline_s is None:
        return
    if isinstance(deadline_s, bool) or not isinstance(deadline_s, (int, float)) or not (
            deadline_s >= 0):  # NaN fails too
        raise TimingSettingError(f"deadline_s: {deadline_s!r} is not allowed; expected None "
                                 "(no limit) or a number of seconds, 0 or more")


def _check_progress(progress) -> None:
    if progress is not None and not callable(progress):
        raise TimingSettingError(f"progress: {progress!r} is not allowed; expected None or a "
                                 "function called with (fraction from 0 to 1, text)")


def _check_settings(dev: torch.device, batch_size, dtype, mode, compile, cuda_graphs, fast,
                    warmup, iters, cudnn_benchmark=None, deadline_s=None,
                    progress=None) -> None:
    _check_count("batch_size", batch_size, 1)
    _check_dtype(dev, dtype)
    if mode not in MODES:
        raise TimingSettingError(f"mode: {mode!r} is not allowed; expected inference or train")
    if cuda_graphs and dev.type != "cuda":
        raise TimingSettingError("cuda_graphs: CUDA graphs need a CUDA GPU; they record GPU "
                                 "kernel launches, which the CPU does not have")
    if cudnn_benchmark not in (None, True, False):
        raise TimingSettingError(f"cudnn_benchmark: {cudnn_benchmark!r} is not allowed; "
                                 "expected None (the default: on, on a GPU), True or False")
    if cudnn_benchmark is False and dev.type != "cuda":
        raise TimingSettingError("cudnn_benchmark: False needs a CUDA GPU; cuDNN (and its "
                                 "algorithm search) runs on NVIDIA GPUs only, so there is "
                                 "nothing to turn off on the CPU; leave it unset there")
    if fast and mode == "train":
        raise TimingSettingError("fast: folding BN into the convolutions holds only for "
                                 "inference (eval-mode BN uses fixed statistics); use "
                                 "mode='inference'")
    if cuda_graphs and not compile and mode == "train" and dtype == "fp16":
        raise TimingSettingError("cuda_graphs: fp16 training needs GradScaler, whose dynamic "
                                 "loss scale reads back to the host every step and cannot be "
                                 "captured in a CUDA graph; use bf16, or add compile")
    if warmup is not None:
        _check_count("warmup", warmup, 1 if compile else 0)
    if iters is not None:
        _check_count("iters", iters, 1)
    _check_deadline(deadline_s)
    _check_progress(progress)


@dataclass
class TimingResult:
    """One timing run. Times are per iteration (one batch) in milliseconds."""

    name: str  # the network (and form), or the model's class name
    batch_size: int
    image_size: int
    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    iqr_ms: float
    images_per_s: float  # batch_size / median
    macs_per_image: int | None  # analytic multiply-adds of one forward pass, one image
    tflops: float | None  # achieved: 2 x MACs x batch (x3 in training) / median
    peak_tflops: float | None  # this device's matmul peak in the same dtype, measured
    peak_percent: float | None  # tflops / peak_tflops x 100
    peak_memory_bytes: int | None  # torch.cuda.max_memory_allocated; None on the CPU
    device_type: str  # "cpu" or "cuda"
    device_name: str
    torch_version: str
    settings: dict  # every setting used
    noisy: bool  # IQR >= 10% of the median
    times_ms: list[float] = field(default_factory=list)  # every timed iteration, in order
    fold_rel_error: float | None = None  # fast mode: folded vs original output
    check_median_ms: float | None = None  # torch.utils.benchmark.Timer on the same step
    notes: list[str] = field(default_factory=list)

    @property
    def check_ratio(self) -> float | None:
        """median_ms / check_median_ms: 1.0 when the two measurements agree."""
        return None if self.check_median_ms is None else self.median_ms / self.check_median_ms

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["check_ratio"] = self.check_ratio
        return data

    @property
    def device_label(self) -> str:
        return f"{'CPU' if self.device_type == 'cpu' else 'GPU'}: {self.device_name}"

    def summary(self) -> str:
        s = self.settings
        lines = [f"{self.name}: batch {self.batch_size} at {self.image_size}x{self.image_size}, "
                 f"{s['mode']}, {s['dtype']}, {variant_text(s)}",
                 f"  on {self.device_label}; torch {self.torch_version}; "
                 f"{s['warmup']} warm-up + {s['iters']} timed iterations ({s['timer']})",
                 f"  median {self.median_ms:.2f} ms (min {self.min_ms:.2f}, max "
                 f"{self.max_ms:.2f}, IQR {self.iqr_ms:.2f} ms = "
                 f"{100 * self.iqr_ms / self.median_ms:.1f}% of the median)"
                 + ("  NOISY: IQR >= 10% of the median" if self.noisy else ""),
                 f"  {self.images_per_s:,.1f} img/s"]
        if self.tflops is not None:
            lines[-1] += f"   {self.tflops:.3g} TFLOP/s"
            if self.peak_percent is not None:
                lines[-1] += (f" = {self.peak_percent:.1f}% of this device's {s['dtype']} "
                              f"matmul peak ({self.peak_tflops:.3g} TFLOP/s, measured)")
        if self.peak_memory_bytes is not None:
            lines.append(f"  peak memory allocated {self.peak_memory_bytes / 2**20:,.1f} MiB")
        else:
            lines.append("  peak memory: not measured on the CPU (PyTorch keeps no CPU "
                         "allocator statistics)")
        if self.fold_rel_error is not None:
            lines.append(f"  BN folded; output checked against the unfolded model: relative "
                         f"error {self.fold_rel_error:.1e} (tolerance "
                         f"{FOLD_TOLERANCE[s['dtype']]:.0e})")
        if self.check_median_ms is not None:
            lines.append(f"  torch.utils.benchmark.Timer, same step: median "
                         f"{self.check_median_ms:.2f} ms (ratio {self.check_ratio:.3f})")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def variant_text(settings: dict) -> str:
    """The layout and compiler settings of a run: "channels_last + compile", or "eager"."""
    parts = [name for name in ("channels_last", "compile", "freeze", "cuda_graphs", "fast")
             if settings.get(name)]
    if settings.get("compile_mode") not in (None, "default"):
        parts[parts.index("compile")] = f"compile({settings['compile_mode']})"
    return " + ".join(parts) or "eager"


def format_table(results: Sequence[TimingResult], baseline: int = -1) -> str:
    """Results side by side; `speed` is img/s relative to results[baseline]."""
    rows = [("model", "median ms", "IQR %", "img/s", "TFLOP/s", "% peak", "speed", "")]
    base = results[baseline].images_per_s if results else 1.0
    for r in results:
        rows.append((r.name, f"{r.median_ms:.2f}", f"{100 * r.iqr_ms / r.median_ms:.1f}",
                     f"{r.images_per_s:,.1f}",
                     "" if r.tflops is None else f"{r.tflops:.3g}",
                     "" if r.peak_percent is None else f"{r.peak_percent:.1f}",
                     f"{r.images_per_s / base:.2f}x", "noisy" if r.noisy else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- progress and the time limit ----------------------------------------------------------------
class _Run:
    """The progress reports and the time limit of one time_model, time_forms or prove call.
    A part of it (one form of time_forms) reports into its share [low, high] of the whole
    and shares its clock, its limit and the list of what has finished."""

    def __init__(self, progress: Callable[[float, str], None] | None = None,
                 deadline_s: float | None = None):
        self.progress = progress
        self.deadline_s = deadline_s
        self.elapsed = stopwatch()
        self.low, self.high, self.prefix = 0.0, 1.0, ""
        self.where = "the start"
        self.finished: list[str] = []  # shared by the parts
        self._last = [0.0]  # shared: the fraction reported never goes back

    def part(self, index: int, count: int, prefix: str) -> _Run:
        """Part `index` of `count` equal parts; its texts start with `prefix`."""
        child = copy.copy(self)
        span = self.high - self.low
        child.low = self.low + span * index / count
        child.high = self.high if index + 1 == count else self.low + span * (index + 1) / count
        child.prefix = self.prefix + prefix
        return child

    def report(self, fraction: float, text: str) -> None:
        """`fraction` (0 to 1) of this part done; `text` says what runs now."""
        self.where = self.prefix + text
        value = (self.high if fraction >= 1
                 else self.low + (self.high - self.low) * max(float(fraction), 0.0))
        value = max(value, self._last[0])
        self._last[0] = value
        if self.progress is not None:
            self.progress(value, self.where)

    def check(self) -> None:
        """TimingError once the time limit is exceeded, naming it and how far the run got."""
        if self.deadline_s is None:
            return
        elapsed = self.elapsed()
        if elapsed > self.deadline_s:
            done = (f"; finished before it: {', '.join(self.finished)}" if self.finished
                    else "")
            raise TimingError(f"deadline_s: the time limit of {self.deadline_s:g} s was "
                              f"exceeded ({elapsed:.3g} s elapsed) at {self.where}{done}; "
                              "not timed further")


# -- one attempt -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    device: torch.device
    dtype: str
    channels_last: bool
    cudnn_benchmark: bool
    compile: bool
    cuda_graphs: bool
    mode: str
    fast: bool
    warmup: int
    iters: int
    seed: int
    input_shape: tuple[int, ...]
    num_classes: int | None
    cross_check: bool
    freeze: bool = False  # torch.compile with Inductor's freezing (inference only)

    @property
    def compile_mode(self) -> str | None:
        if not self.compile:
            return None
        return "reduce-overhead" if self.cuda_graphs else "default"

    @property
    def units(self) -> int:
        """Steps of progress: warm-up and timed iterations, the GPU's Timer cross-check, and
        the end (the matmul peak, the summary)."""
        gpu_check = self.cross_check and self.device.type == "cuda"
        return self.warmup + self.iters + int(gpu_check) + 1


# Compiled attempts run one at a time in a process: torch.compiler.reset() clears state that
# every thread shares (compiled code, CUDA-graph trees and their memory pools).
_COMPILE_LOCK = threading.RLock()


def _loss(output: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy for a classifier's (N, classes) output; the mean square otherwise."""
    if labels is not None and output.dim() == 2:
        return nn.functional.cross_entropy(output.float(), labels)
    return output.float().square().mean()


def _capture(fn: Callable[[], object], device: torch.device, held: dict,
             before: Callable[[], None] | None = None) -> Callable[[], None]:
    """Record `fn` in a CUDA graph, as PyTorch's CUDA-graphs recipe does (CUDA semantics notes,
    "whole network capture"): three warm-up calls on a side stream, then the capture.
    `before` runs before each warm-up call and right before the capture: for a training step,
    optimizer.zero_grad(set_to_none=True), so that the captured backward allocates the
    gradients from the graph's private pool and every replay writes them afresh (with
    gradients present at capture time, each replay would add to them). The graph goes into
    `held`; the returned step replays it. Call it inside _on_device(device)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            if before is not None:
                before()
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    if before is not None:
        before()
    held["graph"] = torch.cuda.CUDAGraph()
    with torch.cuda.graph(held["graph"]):
        fn()
    return lambda: held["graph"].replay()


def _mark_step(plan: _Plan) -> Callable[[], None]:
    """torch.compile with CUDA graphs (cudagraph trees): mark where each step begins, as its
    documentation asks of loops that call the compiled model again and again."""
    if plan.compile and plan.cuda_graphs:
        return torch.compiler.cudagraph_mark_step_begin
    return lambda: None


# The steps below reach the model, the batch, the optimizer and the graph through `held`, a
# dict that the attempt empties when it ends, however it ends: a traceback keeps the frames
# of a failed step, and with them the step's function and its closure, alive.
def _inference_step(model: nn.Module, batch: torch.Tensor, plan: _Plan,
                    held: dict | None = None):
    held = {} if held is None else held
    autocast = _autocast(plan.device, plan.dtype, cache_enabled=not plan.cuda_graphs)
    held["batch"] = batch
    held["forward"] = torch.compile(model, mode=plan.compile_mode) if plan.compile else model
    mark = _mark_step(plan)

    def step():
        mark()
        with torch.inference_mode(), autocast():
            held["forward"](held["batch"])

    if plan.cuda_graphs and not plan.compile:
        return _capture(step, plan.device, held)
    return step


def _train_step(model: nn.Module, batch: torch.Tensor, plan: _Plan,
                generator: torch.Generator, held: dict | None = None):
    """(step, labels): one full training step (zero the gradients, forward, loss, backward,
    SGD update) on the batch and random labels drawn from `generator`."""
    held = {} if held is None else held
    held["batch"] = batch
    held["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    held["scaler"] = torch.amp.GradScaler(plan.device.type) if plan.dtype == "fp16" else None
    held["labels"] = None
    if plan.num_classes:
        held["labels"] = torch.randint(0, plan.num_classes, (batch.shape[0],),
                                       generator=generator).to(plan.device)
    autocast = _autocast(plan.device, plan.dtype, cache_enabled=not plan.cuda_graphs)
    held["forward"] = torch.compile(model, mode=plan.compile_mode) if plan.compile else model
    mark = _mark_step(plan)

    def forward_backward_update():
        with autocast():
            loss = _loss(held["forward"](held["batch"]), held["labels"])
        optimizer, scaler = held["optimizer"], held["scaler"]
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def zero_grad():
        held["optimizer"].zero_grad(set_to_none=True)

    if plan.cuda_graphs and not plan.compile:  # whole-step capture (no GradScaler: refused)
        return (_capture(forward_backward_update, plan.device, held, before=zero_grad),
                held["labels"])

    def step():
        mark()
        zero_grad()
        forward_backward_update()

    return step, held["labels"]


def _fold_checked(model: nn.Module, batch: torch.Tensor, plan: _Plan):
    folded = fold_bn(model)
    autocast = _autocast(plan.device, plan.dtype)
    with torch.inference_mode(), autocast():
        error = relative_error(model(batch), folded(batch))
    tolerance = FOLD_TOLERANCE[plan.dtype]
    if not error <= tolerance:
        raise TimingError(f"fast: the BN-folded model differs from the original by {error:.2e} "
                          f"(max |difference| / max |output|), above the {plan.dtype} "
                          f"tolerance {tolerance:.0e}; not timed")
    return folded, error


def _cudagraph_skips() -> int:
    """How often torch.compile has declined to use CUDA graphs in this process."""
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])


def _attempt(pristine: nn.Module, plan: _Plan, batch_size: int, probe: bool = False,
             run: _Run | None = None) -> dict:
    """Build, warm up and time one configuration. `probe`: one eager step, nothing timed."""
    with _on_device(plan.device), _freezing(plan.freeze and plan.compile and not probe):
        return _attempt_here(pristine, plan, batch_size, probe, run or _Run())


def _freezing(on: bool):
    """Inductor's freezing for the compiles inside: the weights become constants, so that
    BN folds into the convolutions and, on the CPU, oneDNN prepacks the convolution weights
    (torch._inductor.config.freezing; it holds for inference only). A process-wide setting:
    compiled attempts run one at a time (_COMPILE_LOCK)."""
    if not on:
        return contextlib.nullcontext()
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


def _attempt_here(pristine: nn.Module, plan: _Plan, batch_size: int, probe: bool,
                  run: _Run) -> dict:
    held: dict = {}  # what the steps use; emptied however the attempt ends
    try:
        return _attempt_held(pristine, plan, batch_size, probe, run, held)
    finally:
        held.clear()


def _attempt_held(pristine: nn.Module, plan: _Plan, batch_size: int, probe: bool, run: _Run,
                  held: dict) -> dict:
    dev = plan.device
    _release(dev)
    run.report(0, "building the model and the batch")
    model = copy.deepcopy(pristine).to(dev)
    generator = torch.Generator().manual_seed(plan.seed)
    batch = torch.randn(batch_size, *plan.input_shape, generator=generator).to(dev)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    if probe:
        plan = dataclasses.replace(plan, compile=False, cuda_graphs=False, fast=False)
    out = {"fold_rel_error": None, "check_median_ms": None, "peak_memory_bytes": None,
           "cudagraph_skips": None}
    skips = _cudagraph_skips() if plan.compile and plan.cuda_graphs else None
    units = plan.units
    with _numerics(dev, plan.dtype, plan.cudnn_benchmark):
        if plan.mode == "inference":
            model.eval()
            if plan.fast:
                run.report(0, "checking the BN-folded model against the original")
                model, out["fold_rel_error"] = _fold_checked(model, batch, plan)
            if plan.cuda_graphs and not plan.compile:
                run.report(0, "capturing a CUDA graph (3 warm-up calls on a side stream)")
            step = _inference_step(model, batch, plan, held)
        else:
            model.train()
            if plan.cuda_graphs and not plan.compile:
                run.report(0, "capturing a CUDA graph (3 warm-up steps on a side stream)")
            step, _ = _train_step(model, batch, plan, generator, held)
        if probe:
            step()
            _sync(dev)
            return out
        if dev.type == "cuda":  # what is held from here on (a captured graph's pool too)
            torch.cuda.reset_peak_memory_stats(dev)
        for i in range(plan.warmup):
            run.check()
            compiling = plan.compile and i == 0
            run.report(i / units, f"warm-up {i + 1}/{plan.warmup}"
                       + (" (torch.compile compiles)" if compiling else ""))
            if not compiling:
                step()
                continue
            try:  # the first call compiles: say so if that is what fails
                step()
            except Exception as exc:
                if _is_oom(exc):
                    raise
                raise TimingError(f"compile: torch.compile failed: {type(exc).__name__}: "
                                  f"{_first_line(exc)}") from exc

        def between(i: int) -> None:  # after timed iteration i (0-based), outside its span
            run.check()
            if i + 1 < plan.iters:
                run.report((plan.warmup + i + 1) / units, f"iteration {i + 2}/{plan.iters}")

        run.check()
        run.report(plan.warmup / units, f"iteration 1/{plan.iters}")
        if plan.cross_check and dev.type == "cpu":
            out["times_ms"], out["check_median_ms"] = _interleaved(step, dev, plan.iters,
                                                                   between)
        else:
            out["times_ms"] = _time_calls(step, dev, plan.iters, between)
        if dev.type == "cuda":
            out["peak_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
        if plan.cross_check and dev.type == "cuda":
            run.report((plan.warmup + plan.iters) / units,
                       "cross-check with torch.utils.benchmark.Timer")
            out["check_median_ms"] = _timer(step).blocked_autorange(
                min_run_time=max(0.2, sum(out["times_ms"]) / 1e3)).median * 1e3
            run.check()
    if skips is not None:
        out["cudagraph_skips"] = _cudagraph_skips() - skips
    return out


def _timer(step: Callable[[], None]):
    """torch.utils.benchmark.Timer on the same step, with torch's current thread count (its
    default is one thread). It synchronises the current GPU itself: run it inside
    _on_device."""
    from torch.utils.benchmark import Timer

    return Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())


def _interleaved(step: Callable[[], None], device: torch.device, iters: int,
                 between: Callable[[int], None] | None = None) -> tuple[list[float], float]:
    """Our `iters` timed iterations, interleaved with torch.utils.benchmark.Timer's blocks
    (one of ours after each of its blocks, through its callback), so that both measurements
    see the same moments of a shared machine. Returns (our times in ms, Timer's median ms)."""
    ours: list[float] = []

    def one_of_ours() -> None:
        ours.extend(_time_calls(step, device, 1))
        if between is not None:
            between(len(ours) - 1)

    one_of_ours()
    measurement = _timer(step).blocked_autorange(
        callback=lambda number, seconds: one_of_ours() if len(ours) < iters else None,
        min_run_time=max(0.2, (iters - 1) * ours[0] / 1e3))
    while len(ours) < iters:
        one_of_ours()
    return ours[:iters], measurement.median * 1e3


_OOM_TEXTS = ("out of memory", "can't allocate memory", "alloc_failed")


def _oom_in(exc: BaseException | None) -> BaseException | None:
    """The out-of-memory error in `exc`'s chain (its cause or context, and theirs), or None.
    The chain matters for CUDA-graph capture: an allocation that fails inside
    `torch.cuda.graph(...)` is followed by the capture's own error on leaving it
    (capture_end: the capture was invalidated), with the OOM as its context."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
            return exc
        if isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in _OOM_TEXTS):
            return exc  # "CUDA error: out of memory", CUBLAS/CUDNN_STATUS_ALLOC_FAILED, CPU
        exc = exc.__cause__ or exc.__context__
    return None


def _is_oom(exc: BaseException) -> bool:
    return _oom_in(exc) is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _drop_frames(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in `exc`'s traceback (the failed
    attempt's model, batch, graph...), so that its memory can be given back before `exc`
    propagates; the traceback's lines stay."""
    traceback.clear_frames(exc.__traceback__)


def _suggest_batch(pristine: nn.Module, plan: _Plan, failed: int) -> int | None:
    """The largest of failed/2, failed/4, ..., 1 for which one eager step runs."""
    size = failed // 2
    while size >= 1:
        fits = True
        try:
            _attempt(pristine, plan, size, probe=True)
        except BaseException as exc:
            if not _is_oom(exc):
                _drop_frames(exc)
                _release(plan.device)
                raise
            fits = False
        _release(plan.device)  # outside the except block: the traceback is gone
        if fits:
            return size
        size //= 2
    return None


# -- the entry points --------------------------------------------------------------------------
def _source(spec_or_model, image_size, seed):
    """(pristine model, spec or None, image size) for a spec or a model."""
    if isinstance(spec_or_model, ResNeXtSpec):
        spec = spec_or_model if image_size is None else spec_or_model.replace(
            image_size=image_size)
        torch.manual_seed(seed)
        return randomize_(build_model(spec), seed), spec, spec.image_size
    if isinstance(spec_or_model, nn.Module):
        spec = getattr(spec_or_model, "spec", None)
        if isinstance(spec, ResNeXtSpec):
            spec = spec if image_size is None else spec.replace(image_size=image_size)
            return spec_or_model, spec, spec.image_size
        return spec_or_model, None, 224 if image_size is None else image_size
    raise TypeError("time_model expects a ResNeXtSpec or a torch.nn.Module, got "
                    f"{type(spec_or_model).__name__}")


def _num_classes(model: nn.Module, spec: ResNeXtSpec | None) -> int | None:
    if spec is not None:
        return spec.num_classes
    fc = getattr(model, "fc", None)
    return fc.out_features if isinstance(fc, nn.Linear) else None


def time_model(spec_or_model, batch_size: int = 8, image_size: int | None = None,
               device: str | torch.device = "auto", dtype: str = "fp32",
               channels_last: bool = False, cudnn_benchmark: bool | None = None,
               compile: bool = False, cuda_graphs: bool = False, mode: str = "inference",
               fast: bool = False, warmup: int | None = None, iters: int | None = None,
               seed: int = 0, *, input_shape: Sequence[int] | None = None,
               macs: int | None = None, name: str | None = None, cross_check: bool = False,
               progress: Callable[[float, str], None] | None = None,
               deadline_s: float | None = None, freeze: bool = False) -> TimingResult:
    """Time a spec (built with random weights and BN statistics) or a model (timed on a copy)
    on one random batch.

    Args:
        spec_or_model: a ResNeXtSpec, or an nn.Module (its `.spec` gives the multiply-adds).
        batch_size: images per iteration.
        image_size: input height and width; default the spec's (224 for a bare model).
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        dtype: "fp32" (TF32 off), "tf32" (GPU only), "bf16" or "fp16" (autocast; weights fp32).
        channels_last: model and batch in NHWC memory format.
        cudnn_benchmark: let cuDNN time its algorithms first; None (the default) means on, on
            a GPU. GPU only: False on the CPU is refused (there is no cuDNN to turn off).
        compile: torch.compile the model ("reduce-overhead", i.e. CUDA graphs, with
            cuda_graphs); the first warm-up call compiles. torch.compiler.reset() runs before
            and after, so that every compiled attempt compiles afresh and leaves no caches.
        cuda_graphs: replay the step as a CUDA graph (GPU only).
        mode: "inference" (eval, inference_mode) or "train" (forward, cross-entropy on random
            labels, backward, SGD step; fp16 with GradScaler).
        fast: inference with BN folded into the convolutions, checked against the original
            output within FOLD_TOLERANCE[dtype] before timing.
        warmup, iters: untimed and timed iterations; defaults DEFAULT_WARMUP / DEFAULT_ITERS.
        seed: seeds the weights, the batch and the labels.
        input_shape: (channels, height, width) of one input, for a model that is not a network
            (a single block, say); overrides image_size.
        macs: multiply-adds of one forward pass of one input, when the model has no spec.
        name: the label in tables; default the spec's name and form.
        cross_check: also time the same step with torch.utils.benchmark.Timer.
        freeze: with compile, in inference: Inductor's freezing (weights as constants: BN
            folded, and on the CPU the convolution weights prepacked for oneDNN).
        progress: called as progress(fraction, text) as the run goes: fractions from 0 to 1,
            never decreasing, ending at 1.0; texts such as "warm-up 1/2", "iteration 3/10",
            "measuring the matmul peak", "done".
        deadline_s: a hard limit in seconds of wall-clock time, checked before each warm-up
            and timed iteration and before the matmul peak is measured (on a GPU, iterations
            are queued ahead of the GPU: the host checks as it queues them, and once more
            after synchronising).

    Raises:
        TimingSettingError: a setting this machine cannot honour (say, tf32 on the CPU).
        TimingError: out of memory (naming a batch size that fits), a failed compile, a
            folded model that does not match, or the time limit exceeded (naming it and how
            far the run got).
    """
    _check_progress(progress)
    _check_deadline(deadline_s)
    return _time_model(
        _Run(progress, deadline_s), spec_or_model, batch_size, image_size, device, dtype,
        channels_last, cudnn_benchmark, compile, cuda_graphs, mode, fast, warmup, iters, seed,
        input_shape=input_shape, macs=macs, name=name, cross_check=cross_check, freeze=freeze)


def _time_model(run: _Run, spec_or_model, batch_size: int = 8, image_size: int | None = None,
                device: str | torch.device = "auto", dtype: str = "fp32",
                channels_last: bool = False, cudnn_benchmark: bool | None = None,
                compile: bool = False, cuda_graphs: bool = False, mode: str = "inference",
                fast: bool = False, warmup: int | None = None, iters: int | None = None,
                seed: int = 0, *, input_shape: Sequence[int] | None = None,
                macs: int | None = None, name: str | None = None,
                cross_check: bool = False, freeze: bool = False) -> TimingResult:
    """time_model, reporting into `run` (one part of time_forms, or the whole)."""
    dev = resolve_device(device)
    _check_settings(dev, batch_size, dtype, mode, compile, cuda_graphs, fast, warmup, iters,
                    cudnn_benchmark)
    _check_freeze(freeze, compile, mode)
    pristine, spec, size = _source(spec_or_model, image_size, seed)
    if input_shape is not None:
        input_shape = tuple(int(n) for n in input_shape)
        size = input_shape[-1]
    else:
        channels = spec.in_channels if spec is not None else 3
        input_shape = (channels, size, size)
    if macs is None and spec is not None and input_shape[1:] == (size, size):
        macs = network_counts(spec).macs
    warmup = DEFAULT_WARMUP[dev.type] if warmup is None else warmup
    iters = DEFAULT_ITERS[dev.type] if iters is None else iters
    if compile and cuda_graphs:
        warmup = max(warmup, 3)  # cudagraph trees record on the third call
    benchmark = (cudnn_benchmark is not False) if dev.type == "cuda" else None
    plan = _Plan(dev, dtype, channels_last, bool(benchmark), compile, cuda_graphs, mode, fast,
                 warmup, iters, seed, input_shape, _num_classes(pristine, spec), cross_check,
                 bool(freeze))

    with _gpu_lock(dev):
        return _timed(run, dev, pristine, spec, plan, batch_size, size, macs, name)


def _timed(run: _Run, dev: torch.device, pristine: nn.Module, spec: ResNeXtSpec | None,
           plan: _Plan, batch_size: int, size: int, macs: int | None,
           name: str | None) -> TimingResult:
    """The attempt, the out-of-memory advice and the result, holding the GPU's lock."""
    dtype, mode, compile = plan.dtype, plan.mode, plan.compile
    benchmark = plan.cudnn_benchmark if dev.type == "cuda" else None
    failure = out_of_memory = None
    with _COMPILE_LOCK if compile else contextlib.nullcontext():
        if compile:
            _reset_compiler()  # compile afresh: no stale code, no recompile limit reached
        try:
            raw = _attempt(pristine, plan, batch_size, run=run)
        except TimingError as exc:
            failure = str(exc)
        except BaseException as exc:
            if not _is_oom(exc):  # anything else propagates, after the memory is given back
                _drop_frames(exc)
                _release(dev, compiled=compile)
                raise
            out_of_memory = _first_line(_oom_in(exc))
        _release(dev, compiled=compile)  # out of the except blocks: the frames are freed
    if failure is not None:
        raise TimingError(failure)
    if out_of_memory is not None:
        fits = _suggest_batch(pristine, plan, batch_size)
        advice = (f"batch size {fits} fits (one eager {mode} step tried); use it or smaller"
                  if fits else "not even batch size 1 fits; try a smaller image or network")
        raise TimingError(f"out of memory at batch size {batch_size} on "
                          f"{device_name(dev)} ({out_of_memory}); {advice}")

    stats = summarize(raw["times_ms"])
    images_per_s = batch_size / stats.median * 1000
    tflops = peak = percent = None
    if macs is not None:
        factor = TRAIN_FLOP_FACTOR if mode == "train" else 1
        tflops = 2 * macs * batch_size * factor / (stats.median / 1000) / 1e12
        if _peak_key(dev, dtype) not in _PEAK_CACHE:
            run.check()
            run.report((plan.units - 1) / plan.units, "measuring the matmul peak")
        peak = matmul_peak_tflops(dev, dtype)
        percent = tflops / peak * 100
    if name is None:
        name = (f"{spec.name} form ({spec.form})" if spec is not None
                else type(pristine).__name__)
    cuda = dev.type == "cuda"
    settings = {
        "device": str(dev), "dtype": dtype,
        "autocast": None if DTYPES[dtype] is None else str(DTYPES[dtype]).split(".")[-1],
        "tf32": dtype == "tf32" if cuda else None,
        "channels_last": plan.channels_last,
        "cudnn_benchmark": benchmark,
        "compile": compile, "compile_mode": plan.compile_mode, "cuda_graphs": plan.cuda_graphs,
        "freeze": plan.freeze,
        "mode": mode, "fast": plan.fast, "batch_size": batch_size, "image_size": size,
        "input_shape": list(plan.input_shape), "warmup": plan.warmup, "iters": plan.iters,
        "seed": plan.seed, "threads": torch.get_num_threads(), "cross_check": plan.cross_check,
        "deadline_s": run.deadline_s,
        "timer": "CUDA events" if cuda else "time.perf_counter",
        "optimizer": "SGD(lr=0.01, momentum=0.9)" if mode == "train" else None,
        "grad_scaler": mode == "train" and dtype == "fp16",
        "flops_per_step": None if macs is None else 2 * macs * batch_size * (
            TRAIN_FLOP_FACTOR if mode == "train" else 1),
        "cuda_version": torch.version.cuda if cuda else None,
        "cudnn_version": torch.backends.cudnn.version() if cuda else None,
        "device_total_memory_bytes": device_total_memory(dev),
        "cudagraph_skips": raw["cudagraph_skips"],
        "spec": None if spec is None else spec.to_dict(),
    }
    notes = []
    if dev.type == "cpu":
        notes.append(f"timed on the CPU ({torch.get_num_threads()} threads)")
    if stats.noisy:
        notes.append("noisy: the IQR is at least 10% of the median (other work on this "
                     "machine?); compare medians of repeated runs")
    if percent is not None and percent > 100:
        notes.append(f"above the peak: {tflops:.3g} TFLOP/s is {percent:.0f}% of the "
                     f"{peak:.3g} TFLOP/s matmul peak measured in this process; that peak was "
                     "probably measured while other work loaded the machine (or the "
                     "convolutions used a fast algorithm, such as Winograd's, that does fewer "
                     "multiply-adds than the analytic count); % of peak is no bound here")
    if raw["cudagraph_skips"]:
        notes.append(f"torch.compile declined CUDA graphs {raw['cudagraph_skips']} time(s) "
                     "(see its cudagraphs log): part of the step ran without them")
    run.report(1.0, "done")
    return TimingResult(
        name=name, batch_size=batch_size, image_size=size, median_ms=stats.median,
        min_ms=stats.min, max_ms=stats.max, q1_ms=stats.q1, q3_ms=stats.q3, iqr_ms=stats.iqr,
        images_per_s=images_per_s, macs_per_image=macs, tflops=tflops, peak_tflops=peak,
        peak_percent=percent, peak_memory_bytes=raw["peak_memory_bytes"],
        device_type=dev.type, device_name=device_name(dev), torch_version=torch.__version__,
        settings=settings, noisy=stats.noisy, times_ms=raw["times_ms"],
        fold_rel_error=raw["fold_rel_error"], check_median_ms=raw["check_median_ms"],
        notes=notes)


def one_block(spec: ResNeXtSpec, stage: int = 0, seed: int = 0):
    """One block of `stage` (a later one: stride 1, in = out channels, like the paper's conv2
    block of 256-d in and out) in forms (a), (b), (c) with the same weights.

    Returns ({form: module}, input shape (C, H, W), multiply-adds for one input)."""
    plans = stage_plans(spec)
    if not 0 <= stage < len(plans):
        raise TimingSettingError(f"block: stage {stage} is not allowed; this spec has stages "
                                 f"0 to {len(plans) - 1}")
    plan = plans[stage]
    kind = spec.block
    torch.manual_seed(seed)
    modules = {form: B.BLOCK_CLASSES[kind, form](plan.out_channels, plan.width,
                                                 plan.out_channels, spec.cardinality, 1,
                                                 spec.stride_on, None)
               for form in ("a", "b", "c")}
    randomize_(modules["c"], seed)
    state = dense_state(modules["c"])
    for form in ("a", "b"):
        load_dense_state(modules[form], state)
    macs = block_counts(spec, plan, first=False).macs
    return modules, (plan.out_channels, plan.size_out, plan.size_out), macs


def time_forms(spec: ResNeXtSpec, block: int | None = None, *,
               progress: Callable[[float, str], None] | None = None,
               deadline_s: float | None = None, **settings) -> list[TimingResult]:
    """Time forms (a), (b), (c) of the same spec with the same weights and settings, in that
    order: the same function, at different speeds. `block`: time one block of that stage
    (0 = conv2) instead of the whole network. `progress(fraction, text)`: each form takes a
    third of the way, its texts start with "form (a): " and so on. `deadline_s`: one limit for
    all three forms, checked between forms and between iterations. Other arguments are
    time_model's."""
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"time_forms expects a ResNeXtSpec, got {type(spec).__name__}")
    _check_progress(progress)
    _check_deadline(deadline_s)
    run = _Run(progress, deadline_s)
    seed = settings.get("seed", 0)
    if block is not None:
        modules, shape, macs = one_block(spec, block, seed)
        paper = stage_plans(spec)[block].paper_name
        make = {form: (lambda form=form: modules[form]) for form in "abc"}
        extra = {form: {"input_shape": shape, "macs": macs,
                        "name": f"{spec.name} {paper} block form ({form})"} for form in "abc"}
    else:
        torch.manual_seed(seed)
        base = randomize_(build_model(spec.replace(form="c")), seed)
        make = {form: (lambda form=form: convert(base, form)) for form in "abc"}
        extra = {form: {} for form in "abc"}
    results = []
    for index, form in enumerate("abc"):
        part = run.part(index, 3, f"form ({form}): ")
        part.where = f"the start of form ({form})"
        part.check()  # between forms
        results.append(_time_model(part, make[form](), **settings, **extra[form]))
        run.finished.append(f"form ({form})")
    return results


# -- an up-front estimate ----------------------------------------------------------------------
# Fraction of the matmul peak that each form reaches, and host time per module call, per device
# type. Rough, from ResNeXt-50 (32x4d) runs on a shared 2-core x86 CPU (form (c) about 40% of the
# measured fp32 matmul peak; a conv2 block in form (b) about 9x and in form (a) about 14x slower
# than in form (c)) and from the H100 reference in shared/RESNEXT.md (bf16 eager about 12% of
# the bf16 peak; the conv2 block: (b) about 4x, (a) about 10x slower than (c)).
_EFFICIENCY = {"cpu": {"a": 0.03, "b": 0.045, "c": 0.4},
               "cuda": {"a": 0.012, "b": 0.03, "c": 0.12}}
# The (a) and (b) efficiencies above are for paths 4 channels wide (d=4, that conv2 block).
# Wider paths are bigger convolutions, nearer form (c)'s: the efficiency grows as d ** 0.5,
# up to form (c)'s. (On the 2-core CPU at batch 1, form (a)'s speed relative to form (c) went
# from 0.14 at d=4, ResNeXt-50's conv2 block, to 0.71 at d=64, ResNeXt-29 8x64d at 32x32: a
# power of 0.58; form (b)'s from 0.22 to 0.81, a power of 0.47. The GPU is assumed alike.)
_REFERENCE_PATH_WIDTH = 4
_PATH_WIDTH_POWER = 0.5
_PER_CALL_S = {"cpu": 20e-6, "cuda": 10e-6}
# Used only where this process has not measured the peak (measure=False): modest devices, so
# that the estimate errs long.
_ASSUMED_PEAK_TFLOPS = {"cpu": {"fp32": 0.1, "bf16": 0.05, "fp16": 0.05},
                        "cuda": {"fp32": 20.0, "tf32": 100.0, "bf16": 200.0, "fp16": 200.0}}
# The estimate never uses a peak below these TFLOP/s (on the CPU: per torch thread; a 2015
# laptop core with AVX2 reaches about 0.05 in fp32, this project's 2-core EPYC 0.12): a peak
# measured while other work loaded the machine would otherwise make every later estimate
# long, by as much as the load slowed the measurement. On a slower device the estimate errs
# short by up to the floor's ratio to its real peak.
_PEAK_FLOOR_TFLOPS = {"cpu": {"fp32": 0.04, "bf16": 0.01, "fp16": 0.004},
                      "cuda": {"fp32": 1.0, "tf32": 1.0, "bf16": 1.0, "fp16": 1.0}}
_COMPILE_S = {"cpu": 120.0, "cuda": 60.0}
_PEAK_MEASURE_S = 3.0


def _block_calls(spec: ResNeXtSpec, form: str) -> int:
    """Module calls in one block without a projection (convs, BNs, ReLUs, adds)."""
    per_path = {"bottleneck": 7, "basic": 4}[spec.block]  # conv/BN/ReLU per path
    dense = {"bottleneck": 10, "basic": 7}[spec.block]  # a form-(c) block
    return {"a": spec.cardinality * per_path + 3,
            "b": spec.cardinality * (per_path - 2) + 5, "c": dense}[form]


def _module_calls(spec: ResNeXtSpec, form: str) -> int:
    """Module calls in one forward pass (convs, BNs, ReLUs, adds), counted from the spec."""
    calls = 5  # stem and head
    for plan in stage_plans(spec):
        calls += _block_calls(spec, form) * plan.depth + 2  # + the projection's conv and BN
    return calls


def _efficiency(device_type: str, form: str, path_width: int | None) -> float:
    """The fraction of the matmul peak that `form` reaches with paths `path_width` wide (None:
    a dense layer, the stem or the head)."""
    dense = _EFFICIENCY[device_type]["c"]
    if form == "c" or path_width is None:
        return dense
    scale = (max(path_width, 1) / _REFERENCE_PATH_WIDTH) ** _PATH_WIDTH_POWER
    return min(dense, _EFFICIENCY[device_type][form] * scale)


def _estimate_peak(dev: torch.device, dtype: str, measure: bool) -> tuple[float, float]:
    """(the peak in TFLOP/s the estimate uses, seconds still to spend measuring it)."""
    key = _peak_key(dev, dtype)
    if measure and dev.type == "cpu":
        matmul_peak_tflops(dev, dtype)
    elif measure and key not in _PEAK_CACHE:
        lock = _gpu_lock(dev)
        if lock.acquire(blocking=False):  # a GPU busy with a run is not measured: no waiting
            try:
                matmul_peak_tflops(dev, dtype)
            finally:
                lock.release()
    floor = _PEAK_FLOOR_TFLOPS[dev.type][dtype] * (
        torch.get_num_threads() if dev.type == "cpu" else 1)
    peak = _PEAK_CACHE.get(key) or _ASSUMED_PEAK_TFLOPS[dev.type][dtype]
    return max(peak, floor), 0.0 if key in _PEAK_CACHE else _PEAK_MEASURE_S


def estimate_seconds(spec: ResNeXtSpec, batch_size: int, device: str = "auto",
                     mode: str = "inference", iters: int | None = None,
                     warmup: int | None = None, dtype: str = "fp32", compile: bool = False,
                     forms: bool = False, measure: bool = True,
                     block: int | None = None) -> float:
    """A rough estimate, before running it, of how long `time_model` (or `time_forms`, with
    forms=True) takes, in seconds; `block`: of one later block of that stage (as
    time_forms(block=...) times it) instead of the whole network. Meant for warning before a
    long CPU run, not as a measurement.

    How: (warm-up + timed iterations) x, per iteration, the analytic FLOPs (x3 in training) of
    the stem, the head and each stage divided by (peak x the form's efficiency at that
    stage's path width d), plus the module calls x a host time per call; plus a fixed compile
    time when compiling, and the peak's measurement if it is still to come. Form (a) reaches
    a far smaller fraction of the peak than form (c) (C small convolutions instead of one),
    the more so the narrower its paths; the efficiencies are from ResNeXt-50 runs (see
    _EFFICIENCY). The peak is this device's matmul peak measured once per process (now,
    about a second or two, unless measure=False, or the GPU is busy with another run of this
    process: then an assumed modest one), but never less than _PEAK_FLOOR_TFLOPS (per thread
    on the CPU), so that a peak measured under load does not make every later estimate
    long."""
    dev = resolve_device(device)
    _check_dtype(dev, dtype)
    warmup = DEFAULT_WARMUP[dev.type] if warmup is None else warmup
    iters = DEFAULT_ITERS[dev.type] if iters is None else iters
    peak, overhead = _estimate_peak(dev, dtype, measure)
    factor = TRAIN_FLOP_FACTOR if mode == "train" else 1
    counts = network_counts(spec)
    if block is not None:
        plans = stage_plans(spec)
        if not 0 <= block < len(plans):
            raise TimingSettingError(f"block: stage {block} is not allowed; this spec has "
                                     f"stages 0 to {len(plans) - 1}")
        parts = [(block_counts(spec, plans[block], first=False).macs, plans[block].path_width)]
    else:
        dense = counts.stem.macs + counts.head.macs
        parts = [(dense, None)] + [
            (stage.total.macs, stage.plan.path_width) for stage in counts.stages]
    total = 0.0
    for form in (("a", "b", "c") if forms else (spec.form,)):
        calls = _block_calls(spec, form) if block is not None else _module_calls(spec, form)
        per_iter = sum(2 * macs * batch_size * factor
                       / (peak * 1e12 * _efficiency(dev.type, form, width))
                       for macs, width in parts)
        per_iter += calls * factor * _PER_CALL_S[dev.type]
        total += (warmup + iters) * per_iter + (_COMPILE_S[dev.type] if compile else 0.0)
    return total + overhead


# -- python -m builder time --------------------------------------------------------------------
def run_cli(spec: ResNeXtSpec, args) -> int:
    """`python -m builder time`: the arguments are builder.cli's. TimingSettingError and
    SpecError (builder.guards: a network too big for this device) propagate (the CLI exits 2);
    a TimingError prints one line and returns 1."""
    from .. import guards

    settings = dict(batch_size=args.batch, device=args.device, dtype=args.dtype,
                    channels_last=args.channels_last,
                    cudnn_benchmark=False if args.no_cudnn_benchmark else None,
                    compile=args.compile, cuda_graphs=args.cuda_graphs, mode=args.mode,
                    fast=args.fast, warmup=args.warmup, iters=args.iters, seed=args.seed,
                    cross_check=args.cross_check, freeze=args.freeze)
    dev = resolve_device(args.device)
    _check_settings(dev, args.batch, args.dtype, args.mode, args.compile, args.cuda_graphs,
                    args.fast, args.warmup, args.iters, settings["cudnn_benchmark"])
    _check_freeze(args.freeze, args.compile, args.mode)
    guards.check(spec, args.batch, guards.Limits.for_device(dev.type, device_total_memory(dev)),
                 mode="training" if args.mode == "train" else "inference",
                 dtype_bytes=2 if args.dtype in ("bf16", "fp16") else 4,
                 models=3 if args.forms else 1)  # before anything is built
    if not args.json:
        seconds = estimate_seconds(spec, args.batch, args.device, args.mode, args.iters,
                                   args.warmup, args.dtype, args.compile, forms=args.forms,
                                   measure=dev.type == "cpu", block=args.one_block)
        if seconds > 30:
            print(f"note: this may take about {seconds:.0f} s on {device_name(dev)}",
                  file=sys.stderr)
    try:
        if args.forms:
            results = time_forms(spec, block=args.one_block, **settings)
        elif args.one_block is not None:
            modules, shape, macs = one_block(spec, args.one_block, args.seed)
            paper = stage_plans(spec)[args.one_block].paper_name
            results = [time_model(modules[spec.form], input_shape=shape, macs=macs,
                                  name=f"{spec.name} {paper} block form ({spec.form})",
                                  **settings)]
        else:
            results = [time_model(spec, **settings)]
    except TimingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        data = [r.to_dict() for r in results]
        print(json.dumps(data if args.forms else data[0], indent=2))
        return 0
    print("\n\n".join(r.summary() for r in results))
    if args.forms:
        print("\nForms side by side (speed relative to form (c)): equal in math, not in speed")
        print(format_table(results))
    return 0
