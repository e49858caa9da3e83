"""The wall clock and the timed calls: CUDA events on a GPU, time.perf_counter on the CPU."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .devices import _on_device

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
                between: Callable[[int], None] | None = None,
                clock: Callable[[], float] | None = None) -> list[float]:
    """Milliseconds of each of `count` calls: CUDA events (read after one synchronisation at
    the end) on a GPU, the host clock on the CPU (`clock`, else the module's `_clock`, which a
    test may replace). `between(i)` runs after call i, outside the timed span (the progress
    report and the time limit)."""
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
    clock = clock or _clock
    times = []
    for i in range(count):
        begin = clock()
        fn()
        times.append((clock() - begin) * 1e3)
        if between is not None:
            between(i)
    return times

