"""This device's own compute peak (dense matrix products) and memory bandwidth (a large copy),
each measured once per process (per thread count on the CPU) and cached.

On the CPU the peak is the best of two libraries' dense products: torch.mm (the BLAS, MKL on
x86) and a 1x1 convolution over a large channels_last image, which is a matrix product run by
oneDNN, the library every convolution here runs on; either can be the faster on a given CPU
(benchmarks/RESULTS.md, issue 14). A peak measured while other work loads the machine is too
low: `refresh_peak` measures again and keeps the larger, and time_model does so before it
reports more than 100% of the peak."""

from __future__ import annotations

import time

import torch

from .clock import _time_calls
from .devices import (
    DTYPES,
    _check_dtype,
    _gpu_lock,
    _numerics,
    _on_device,
    _release,
    resolve_device,
)

# the peaks are always timed on the real clock: a test's fake clock would make a product look
# instant and the size search run to its largest
_real_clock = time.perf_counter
# (device, dtype, torch threads on the CPU or None) -> TFLOP/s, measured once per process
_PEAK_CACHE: dict[tuple[str, str, int | None], float] = {}
# the same key -> {candidate: TFLOP/s} of the last measurement (for reports)
PEAK_DETAILS: dict[tuple[str, str, int | None], dict[str, float]] = {}
# the same key -> when it was last measured (the real clock's seconds)
_MEASURED_AT: dict[tuple[str, str, int | None], float] = {}
REFRESH_EVERY_S = 60.0  # refresh_peak measures again at most this often
# (device, torch threads on the CPU or None) -> GB/s
_BANDWIDTH_CACHE: dict[tuple[str, int | None], float] = {}


def _peak_key(device: torch.device, dtype: str) -> tuple[str, str, int | None]:
    """The peak's cache key: a CPU's peak depends on how many threads torch uses."""
    return str(device), dtype, torch.get_num_threads() if device.type == "cpu" else None


def _matmul_ms(device: torch.device, dtype: torch.dtype, size: int, count: int) -> list[float]:
    """Milliseconds of `count` products of two random size x size matrices, after two more."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device, dtype)
    b = torch.randn(size, size, generator=generator).to(device, dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    _time_calls(lambda: torch.matmul(a, b, out=out), device, 2, clock=_real_clock)
    return _time_calls(lambda: torch.matmul(a, b, out=out), device, count, clock=_real_clock)


def _conv_gemm_ms(device: torch.device, dtype: torch.dtype, size: int,
                  count: int) -> list[float]:
    """Milliseconds of `count` 1x1 convolutions, size -> size channels over a 64x64
    channels_last image: a (4096 x size) by (size x size) product, run by oneDNN on the
    CPU."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, size, 64, 64, generator=generator).to(device, dtype)
    w = torch.randn(size, size, 1, 1, generator=generator).to(device, dtype)
    x, w = (t.contiguous(memory_format=torch.channels_last) for t in (x, w))
    run = lambda: torch.nn.functional.conv2d(x, w)  # noqa: E731
    _time_calls(run, device, 2, clock=_real_clock)
    return _time_calls(run, device, count, clock=_real_clock)


def _measure_peak(dev: torch.device, dtype: str) -> dict[str, float]:
    """{candidate: TFLOP/s}: torch.mm at the size where one product takes long enough to
    time, best of five; on the CPU also oneDNN's 1x1 convolution, best of five."""
    operand = DTYPES[dtype] or torch.float32
    size, largest, enough = (256, 4096, 0.05) if dev.type == "cpu" else (2048, 16384, 0.002)
    with _gpu_lock(dev), _on_device(dev), _numerics(dev, dtype):
        while True:
            seconds = min(_matmul_ms(dev, operand, size, 1)) / 1e3
            if seconds >= enough or size >= largest:
                break
            size *= 2
        found = {f"torch.mm {size}x{size}": 2 * size**3 / (
            min(_matmul_ms(dev, operand, size, 5)) / 1e3) / 1e12}
        if dev.type == "cpu":
            for channels in (512, 1024):
                best = min(_conv_gemm_ms(dev, operand, channels, 5)) / 1e3
                found[f"1x1 conv {channels}->{channels} at 64x64 (oneDNN)"] = (
                    2 * 4096 * channels * channels / best / 1e12)
        _release(dev)
    return found


def matmul_peak_tflops(device: str | torch.device = "auto", dtype: str = "fp32") -> float:
    """This device's dense matrix-product throughput in TFLOP/s for `dtype` (fp32 with TF32
    off, tf32, bf16 or fp16 operands), measured once per process and device (on the CPU, once
    per torch thread count) and cached: torch.mm, the size doubled until one product takes
    long enough to time, then the best of five; on the CPU the larger of that and oneDNN's
    1x1 convolution (see the module docstring). PEAK_DETAILS keeps each candidate's rate."""
    dev = resolve_device(device)
    _check_dtype(dev, dtype)
    key = _peak_key(dev, dtype)
    if key not in _PEAK_CACHE:
        PEAK_DETAILS[key] = _measure_peak(dev, dtype)
        _MEASURED_AT[key] = _real_clock()
        _PEAK_CACHE[key] = max(PEAK_DETAILS[key].values())
    return _PEAK_CACHE[key]


def refresh_peak(device: str | torch.device = "auto", dtype: str = "fp32") -> float:
    """Measure the peak again and keep the larger: a first measurement taken while other
    work loaded the machine is too low, and would put a result above 100%. At most once per
    REFRESH_EVERY_S per key (a measurement takes seconds on a small CPU)."""
    dev = resolve_device(device)
    key = _peak_key(dev, dtype)
    old = matmul_peak_tflops(dev, dtype) if key in _PEAK_CACHE else 0.0
    if _real_clock() - _MEASURED_AT.get(key, -REFRESH_EVERY_S) < REFRESH_EVERY_S:
        return _PEAK_CACHE[key]
    found = _measure_peak(dev, dtype)
    _MEASURED_AT[key] = _real_clock()
    if max(found.values()) > old:
        PEAK_DETAILS[key] = found
        _PEAK_CACHE[key] = max(found.values())
    return _PEAK_CACHE[key]


def _copy_seconds(dev: torch.device, count: int) -> float:
    """The best of five copies of `count` fp32 values, after two untimed ones."""
    source = torch.ones(count, device=dev)
    target = torch.empty_like(source)
    _time_calls(lambda: target.copy_(source), dev, 2, clock=_real_clock)
    return min(_time_calls(lambda: target.copy_(source), dev, 5, clock=_real_clock)) / 1e3


def memory_bandwidth_gbs(device: str | torch.device = "auto") -> float:
    """This device's memory bandwidth in GB/s (1e9 bytes): copying a buffer far larger than
    the caches (CPU 256 MiB, GPU 1 GiB of fp32), counted as read + write (2 x its bytes),
    best of five after two untimed copies. Cached once per process and device (on the CPU,
    per torch thread count)."""
    dev = resolve_device(device)
    key = (str(dev), torch.get_num_threads() if dev.type == "cpu" else None)
    if key in _BANDWIDTH_CACHE:
        return _BANDWIDTH_CACHE[key]
    count = (64 if dev.type == "cpu" else 256) * 2**20  # fp32 values
    with _gpu_lock(dev), _on_device(dev):
        best = _copy_seconds(dev, count)
        _release(dev)
    _BANDWIDTH_CACHE[key] = 2 * count * 4 / best / 1e9
    return _BANDWIDTH_CACHE[key]
