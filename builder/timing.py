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
  against this device's own matrix-multiply peak in the same dtype, measured once per process.

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
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from . import blocks as B
from .complexity import block_counts, network_counts
from .convert import convert, dense_state, load_dense_state, randomize_
from .network import build_model, stage_plans
from .spec import ResNeXtSpec

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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _release(device: torch.device) -> None:
    """Give back what a finished or failed attempt held."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


@contextlib.contextmanager
def _numerics(device: torch.device, dtype: str, cudnn_benchmark: bool = True):
    """TF32 on or off as `dtype` asks, and cudnn.benchmark, for the duration; restored after.
    (PyTorch enables TF32 convolutions by default: "fp32" here turns them off.)"""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    torch.backends.cudnn.allow_tf32 = dtype == "tf32"
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = saved


def _autocast(device: torch.device, dtype: str, cache_enabled: bool = True):
    """A factory of autocast contexts for bf16/fp16, of null contexts for fp32/tf32."""
    low = DTYPES[dtype]
    if low is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=low, cache_enabled=cache_enabled)


_clock = time.perf_counter  # the CPU clock (a test may replace it)


def _time_calls(fn: Callable[[], object], device: torch.device, count: int) -> list[float]:
    """Milliseconds of each of `count` calls: CUDA events (read after one synchronisation at
    the end) on a GPU, time.perf_counter on the CPU."""
    if device.type == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
        torch.cuda.synchronize(device)
        for start, end in zip(starts, ends, strict=True):
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]
    times = []
    for _ in range(count):
        begin = _clock()
        fn()
        times.append((_clock() - begin) * 1e3)
    return times


# -- the device's own peak ---------------------------------------------------------------------
_PEAK_CACHE: dict[tuple[str, str], float] = {}


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
    off, tf32, bf16 or fp16 operands), measured once per process and device and cached: the
    size is doubled until one product takes long enough to time, then the best of five."""
    dev = resolve_device(device)
    _check_dtype(dev, dtype)
    key = (str(dev), dtype)
    if key in _PEAK_CACHE:
        return _PEAK_CACHE[key]
    operand = DTYPES[dtype] or torch.float32
    size, largest, enough = (256, 4096, 0.05) if dev.type == "cpu" else (2048, 16384, 0.002)
    with _numerics(dev, dtype):
        while True:
            seconds = min(_matmul_ms(dev, operand, size, 1)) / 1e3
            if seconds >= enough or size >= largest:
                break
            size *= 2
        best = min(_matmul_ms(dev, operand, size, 5)) / 1e3
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


def _check_settings(dev: torch.device, batch_size, dtype, mode, compile, cuda_graphs, fast,
                    warmup, iters) -> None:
    _check_count("batch_size", batch_size, 1)
    _check_dtype(dev, dtype)
    if mode not in MODES:
        raise TimingSettingError(f"mode: {mode!r} is not allowed; expected inference or train")
    if cuda_graphs and dev.type != "cuda":
        raise TimingSettingError("cuda_graphs: CUDA graphs need a CUDA GPU; they record GPU "
                                 "kernel launches, which the CPU does not have")
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
                 f"{s['mode']}, {s['dtype']}, {_variant(s)}",
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


def _variant(settings: dict) -> str:
    parts = [name for name in ("channels_last", "compile", "cuda_graphs", "fast")
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

    @property
    def compile_mode(self) -> str | None:
        if not self.compile:
            return None
        return "reduce-overhead" if self.cuda_graphs else "default"


def _loss(output: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy for a classifier's (N, classes) output; the mean square otherwise."""
    if labels is not None and output.dim() == 2:
        return nn.functional.cross_entropy(output.float(), labels)
    return output.float().square().mean()


def _capture(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """Record `fn` in a CUDA graph after three warm-up calls on a side stream (PyTorch's
    recipe); the returned step replays it."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def _inference_step(model: nn.Module, batch: torch.Tensor, plan: _Plan):
    autocast = _autocast(plan.device, plan.dtype, cache_enabled=not plan.cuda_graphs)
    forward = torch.compile(model, mode=plan.compile_mode) if plan.compile else model

    def step():
        with torch.inference_mode(), autocast():
            forward(batch)

    if plan.cuda_graphs and not plan.compile:
        return _capture(step, plan.device)
    return step


def _train_step(model: nn.Module, batch: torch.Tensor, plan: _Plan,
                generator: torch.Generator):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(plan.device.type) if plan.dtype == "fp16" else None
    labels = None
    if plan.num_classes:
        labels = torch.randint(0, plan.num_classes, (batch.shape[0],),
                               generator=generator).to(plan.device)
    autocast = _autocast(plan.device, plan.dtype, cache_enabled=not plan.cuda_graphs)
    forward = torch.compile(model, mode=plan.compile_mode) if plan.compile else model

    def forward_backward_update():
        with autocast():
            loss = _loss(forward(batch), labels)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    if plan.cuda_graphs and not plan.compile:  # whole-step capture: gradients are static
        optimizer.zero_grad(set_to_none=True)
        return _capture(forward_backward_update, plan.device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        forward_backward_update()

    return step


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


def _attempt(pristine: nn.Module, plan: _Plan, batch_size: int, probe: bool = False) -> dict:
    """Build, warm up and time one configuration. `probe`: one eager step, nothing timed."""
    dev = plan.device
    _release(dev)
    model = copy.deepcopy(pristine).to(dev)
    generator = torch.Generator().manual_seed(plan.seed)
    batch = torch.randn(batch_size, *plan.input_shape, generator=generator).to(dev)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    if probe:
        plan = dataclasses.replace(plan, compile=False, cuda_graphs=False, fast=False)
    out = {"fold_rel_error": None, "check_median_ms": None, "peak_memory_bytes": None}
    with _numerics(dev, plan.dtype, plan.cudnn_benchmark):
        if plan.mode == "inference":
            model.eval()
            if plan.fast:
                model, out["fold_rel_error"] = _fold_checked(model, batch, plan)
            step = _inference_step(model, batch, plan)
        else:
            model.train()
            step = _train_step(model, batch, plan, generator)
        if probe:
            step()
            _sync(dev)
            return out
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        if plan.compile:  # the first call compiles: say so if that is what fails
            try:
                step()
            except Exception as exc:
                if _is_oom(exc):
                    raise
                raise TimingError(f"compile: torch.compile failed: {type(exc).__name__}: "
                                  f"{_first_line(exc)}") from exc
        for _ in range(plan.warmup - (1 if plan.compile else 0)):
            step()
        if plan.cross_check and dev.type == "cpu":
            out["times_ms"], out["check_median_ms"] = _interleaved(step, dev, plan.iters)
        else:
            out["times_ms"] = _time_calls(step, dev, plan.iters)
        if dev.type == "cuda":
            out["peak_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
        if plan.cross_check and dev.type == "cuda":
            out["check_median_ms"] = _timer(step).blocked_autorange(
                min_run_time=max(0.2, sum(out["times_ms"]) / 1e3)).median * 1e3
    return out


def _timer(step: Callable[[], None]):
    """torch.utils.benchmark.Timer on the same step, with torch's current thread count (its
    default is one thread); it synchronises the GPU itself."""
    from torch.utils.benchmark import Timer

    return Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())


def _interleaved(step: Callable[[], None], device: torch.device,
                 iters: int) -> tuple[list[float], float]:
    """Our `iters` timed iterations, interleaved with torch.utils.benchmark.Timer's blocks
    (one of ours after each of its blocks, through its callback), so that both measurements
    see the same moments of a shared machine. Returns (our times in ms, Timer's median ms)."""
    ours = _time_calls(step, device, 1)

    def one_of_ours(number, seconds):
        if len(ours) < iters:
            ours.extend(_time_calls(step, device, 1))

    measurement = _timer(step).blocked_autorange(
        callback=one_of_ours, min_run_time=max(0.2, (iters - 1) * ours[0] / 1e3))
    if len(ours) < iters:
        ours.extend(_time_calls(step, device, iters - len(ours)))
    return ours[:iters], measurement.median * 1e3


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text
        or isinstance(exc, MemoryError))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _suggest_batch(pristine: nn.Module, plan: _Plan, failed: int) -> int | None:
    """The largest of failed/2, failed/4, ..., 1 for which one eager step runs."""
    size = failed // 2
    while size >= 1:
        fits = True
        try:
            _attempt(pristine, plan, size, probe=True)
        except Exception as exc:
            if not _is_oom(exc):
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
               channels_last: bool = False, cudnn_benchmark: bool = True, compile: bool = False,
               cuda_graphs: bool = False, mode: str = "inference", fast: bool = False,
               warmup: int | None = None, iters: int | None = None, seed: int = 0, *,
               input_shape: Sequence[int] | None = None, macs: int | None = None,
               name: str | None = None, cross_check: bool = False) -> TimingResult:
    """Time a spec (built with random weights and BN statistics) or a model (timed on a copy)
    on one random batch.

    Args:
        spec_or_model: a ResNeXtSpec, or an nn.Module (its `.spec` gives the multiply-adds).
        batch_size: images per iteration.
        image_size: input height and width; default the spec's (224 for a bare model).
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        dtype: "fp32" (TF32 off), "tf32" (GPU only), "bf16" or "fp16" (autocast; weights fp32).
        channels_last: model and batch in NHWC memory format.
        cudnn_benchmark: let cuDNN time its algorithms first (GPU; ignored on the CPU).
        compile: torch.compile the model ("reduce-overhead", i.e. CUDA graphs, with
            cuda_graphs); the first warm-up call compiles.
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

    Raises:
        TimingSettingError: a setting this machine cannot honour (say, tf32 on the CPU).
        TimingError: out of memory (naming a batch size that fits), a failed compile, or a
            folded model that does not match.
    """
    dev = resolve_device(device)
    _check_settings(dev, batch_size, dtype, mode, compile, cuda_graphs, fast, warmup, iters)
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
    plan = _Plan(dev, dtype, channels_last, cudnn_benchmark, compile, cuda_graphs, mode, fast,
                 warmup, iters, seed, input_shape, _num_classes(pristine, spec), cross_check)

    failure = out_of_memory = None
    try:
        raw = _attempt(pristine, plan, batch_size)
    except TimingError as exc:
        failure = str(exc)
    except Exception as exc:
        if not _is_oom(exc):
            raise
        out_of_memory = _first_line(exc)
    _release(dev)  # out of the except blocks: a failed attempt's frames are already freed
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
        peak = matmul_peak_tflops(dev, dtype)
        percent = tflops / peak * 100
    if name is None:
        name = (f"{spec.name} form ({spec.form})" if spec is not None
                else type(pristine).__name__)
    settings = {
        "device": str(dev), "dtype": dtype,
        "autocast": None if DTYPES[dtype] is None else str(DTYPES[dtype]).split(".")[-1],
        "tf32": dtype == "tf32" if dev.type == "cuda" else None,
        "channels_last": channels_last,
        "cudnn_benchmark": cudnn_benchmark if dev.type == "cuda" else None,
        "compile": compile, "compile_mode": plan.compile_mode, "cuda_graphs": cuda_graphs,
        "mode": mode, "fast": fast, "batch_size": batch_size, "image_size": size,
        "input_shape": list(input_shape), "warmup": warmup, "iters": iters, "seed": seed,
        "threads": torch.get_num_threads(), "cross_check": cross_check,
        "timer": "CUDA events" if dev.type == "cuda" else "time.perf_counter",
        "optimizer": "SGD(lr=0.01, momentum=0.9)" if mode == "train" else None,
        "grad_scaler": mode == "train" and dtype == "fp16",
        "flops_per_step": None if macs is None else 2 * macs * batch_size * (
            TRAIN_FLOP_FACTOR if mode == "train" else 1),
        "spec": None if spec is None else spec.to_dict(),
    }
    notes = []
    if dev.type == "cpu":
        notes.append(f"timed on the CPU ({torch.get_num_threads()} threads)")
    if stats.noisy:
        notes.append("noisy: the IQR is at least 10% of the median (other work on this "
                     "machine?); compare medians of repeated runs")
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


def time_forms(spec: ResNeXtSpec, block: int | None = None, **settings) -> list[TimingResult]:
    """Time forms (a), (b), (c) of the same spec with the same weights and settings, in that
    order: the same function, at different speeds. `block`: time one block of that stage
    (0 = conv2) instead of the whole network. Other arguments are time_model's."""
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"time_forms expects a ResNeXtSpec, got {type(spec).__name__}")
    seed = settings.get("seed", 0)
    if block is not None:
        modules, shape, macs = one_block(spec, block, seed)
        paper = stage_plans(spec)[block].paper_name
        return [time_model(modules[form], input_shape=shape, macs=macs,
                           name=f"{spec.name} {paper} block form ({form})", **settings)
                for form in ("a", "b", "c")]
    torch.manual_seed(seed)
    base = randomize_(build_model(spec.replace(form="c")), seed)
    return [time_model(convert(base, form), **settings) for form in ("a", "b", "c")]


# -- an up-front estimate ----------------------------------------------------------------------
# Fraction of the matmul peak that each form reaches, and host time per module call, per device
# type. Rough, from ResNeXt-50 (32x4d) runs on a shared 2-core x86 CPU (form (c) about 40% of the
# measured fp32 matmul peak; a conv2 block in form (b) about 9x and in form (a) about 14x slower
# than in form (c)) and from the H100 reference in shared/RESNEXT.md (bf16 eager about 12% of
# the bf16 peak; the conv2 block: (b) about 4x, (a) about 10x slower than (c)).
_EFFICIENCY = {"cpu": {"a": 0.03, "b": 0.045, "c": 0.4},
               "cuda": {"a": 0.012, "b": 0.03, "c": 0.12}}
_PER_CALL_S = {"cpu": 20e-6, "cuda": 10e-6}
# Used only where this process has not measured the peak (measure=False): modest devices, so
# that the estimate errs long.
_ASSUMED_PEAK_TFLOPS = {"cpu": {"fp32": 0.1, "bf16": 0.05, "fp16": 0.05},
                        "cuda": {"fp32": 20.0, "tf32": 100.0, "bf16": 200.0, "fp16": 200.0}}
_COMPILE_S = {"cpu": 120.0, "cuda": 60.0}
_PEAK_MEASURE_S = 3.0


def _module_calls(spec: ResNeXtSpec, form: str) -> int:
    """Module calls in one forward pass (convs, BNs, ReLUs, adds), counted from the spec."""
    per_path = {"bottleneck": 7, "basic": 4}[spec.block]  # conv/BN/ReLU per path
    dense = {"bottleneck": 10, "basic": 7}[spec.block]  # a form-(c) block
    calls = 5  # stem and head
    for plan in stage_plans(spec):
        paths = spec.cardinality * plan.depth
        calls += {"a": paths * per_path + 3 * plan.depth,
                  "b": paths * (per_path - 2) + 5 * plan.depth,
                  "c": dense * plan.depth}[form] + 2
    return calls


def estimate_seconds(spec: ResNeXtSpec, batch_size: int, device: str = "auto",
                     mode: str = "inference", iters: int | None = None,
                     warmup: int | None = None, dtype: str = "fp32", compile: bool = False,
                     forms: bool = False, measure: bool = True) -> float:
    """A rough estimate, before running it, of how long `time_model` (or `time_forms`, with
    forms=True) takes, in seconds: iterations x (analytic FLOPs / (device peak x the form's
    efficiency) + module calls x host time per call), plus compile time. Form (a) reaches a far
    smaller fraction of the peak than form (c) (C tiny convolutions instead of one), most of all
    on the CPU. The peak is this device's measured matmul peak (measured now, once per process,
    about a second or two, unless measure=False), else an assumed modest one. Meant for warning
    before a long CPU run, not as a measurement."""
    dev = resolve_device(device)
    _check_dtype(dev, dtype)
    warmup = DEFAULT_WARMUP[dev.type] if warmup is None else warmup
    iters = DEFAULT_ITERS[dev.type] if iters is None else iters
    key = (str(dev), dtype)
    if measure:
        matmul_peak_tflops(dev, dtype)
    peak = _PEAK_CACHE.get(key) or _ASSUMED_PEAK_TFLOPS[dev.type][dtype]
    overhead = 0.0 if key in _PEAK_CACHE else _PEAK_MEASURE_S
    factor = TRAIN_FLOP_FACTOR if mode == "train" else 1
    flops = 2 * network_counts(spec).macs * batch_size * factor
    total = 0.0
    for form in (("a", "b", "c") if forms else (spec.form,)):
        per_iter = (flops / (peak * 1e12 * _EFFICIENCY[dev.type][form])
                    + _module_calls(spec, form) * factor * _PER_CALL_S[dev.type])
        total += (warmup + iters) * per_iter + (_COMPILE_S[dev.type] if compile else 0.0)
    return total + overhead


# -- python -m builder time --------------------------------------------------------------------
def run_cli(spec: ResNeXtSpec, args) -> int:
    """`python -m builder time`: the arguments are builder.cli's. TimingSettingError propagates
    (the CLI exits 2); a TimingError prints one line and returns 1."""
    settings = dict(batch_size=args.batch, device=args.device, dtype=args.dtype,
                    channels_last=args.channels_last,
                    cudnn_benchmark=not args.no_cudnn_benchmark, compile=args.compile,
                    cuda_graphs=args.cuda_graphs, mode=args.mode, fast=args.fast,
                    warmup=args.warmup, iters=args.iters, seed=args.seed,
                    cross_check=args.cross_check)
    dev = resolve_device(args.device)
    _check_settings(dev, args.batch, args.dtype, args.mode, args.compile, args.cuda_graphs,
                    args.fast, args.warmup, args.iters)
    if args.one_block is None and not args.json:
        seconds = estimate_seconds(spec, args.batch, args.device, args.mode, args.iters,
                                   args.warmup, args.dtype, args.compile, forms=args.forms,
                                   measure=dev.type == "cpu")
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
