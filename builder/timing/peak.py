"""This device's own matrix-multiply peak, measured once per process (per thread count on
the CPU) and cached."""

from __future__ import annotations

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

