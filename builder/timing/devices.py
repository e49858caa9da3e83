"""Devices: which ones, their names and memory, one user per GPU, synchronisation, releasing
memory, and the precision flags (TF32, cudnn.benchmark, autocast) of a run."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import threading
from collections.abc import Callable

import torch

from .errors import TimingSettingError

# dtype setting -> (weights and inputs, autocast dtype or None). "tf32" runs fp32 tensors with
# TensorFloat-32 tensor cores (NVIDIA Ampere and later) for matmuls and convolutions.
DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
GPU_ONLY_DTYPES = ("tf32",)


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




def _check_dtype(device: torch.device, dtype: str) -> None:
    if dtype not in DTYPES:
        raise TimingSettingError(f"dtype: {dtype!r} is not allowed; expected one of "
                                 f"{', '.join(DTYPES)}")
    if device.type == "cpu" and dtype in GPU_ONLY_DTYPES:
        raise TimingSettingError(
            "dtype: 'tf32' needs a CUDA GPU (TensorFloat-32 runs on NVIDIA tensor cores, "
            "Ampere and later); on the CPU use fp32, bf16 or fp16")

