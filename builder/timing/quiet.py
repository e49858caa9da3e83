"""torch.profiler without its chatter on stderr.

Kineto writes lines such as `USDT:2026-12-02 07:05:27 4828:4828 SyncActivityProfilerHandler.cpp:52]
profiler_start` to file descriptor 2 (from C++, whatever the log level) at every start and
stop, and torch's CPU allocator warns once that memory allocated before the profiler started
has no allocation event, which is how builder measures (the memory held before the step is
counted apart). Around a profiled region, descriptor 2 goes to a temporary file; what is not
that chatter is written back to stderr when the region ends: delayed by the region's length,
never lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

import torch

CHATTER = re.compile(
    r"(?:USDT|STAGE):[\d-]+ [\d:.]+ \d+:\d+ \w+\.cpp:\d+\] "
    r"|\[W\d+ [\d:.]+ (?:\d+ )?CPUAllocator\.cpp:\d+\] Memory block of unknown size was allocated "
    r"before the profiling started")
_LOCK = threading.Lock()  # descriptor 2 is the process's: one region redirects it at a time


def kept_lines(text: str) -> str:
    """`text` without the profiler's chatter lines."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not CHATTER.match(line))


@contextlib.contextmanager
def _stderr_filtered():
    with _LOCK, tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = kept_lines(held.read().decode("utf-8", errors="replace"))
            if text:
                sys.stderr.write(text)
                sys.stderr.flush()


@contextlib.contextmanager
def profile(**kwargs):
    """torch.profiler.profile(**kwargs), its chatter kept off stderr; yields the profiler."""
    with _stderr_filtered(), torch.profiler.profile(**kwargs) as prof:
        yield prof
