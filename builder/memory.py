"""Giving freed memory back to the system after a big run.

CPython and PyTorch free a dropped model's tensors, but glibc's allocator keeps the pages for
reuse, so the process's RSS stays where the run's peak left it (benchmarks/RESULTS.md, "Memory
given back"). `release()` collects cycles, then asks glibc to return what it holds
(`malloc_trim(0)`). Elsewhere (macOS, musl, Windows) only the collection runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

_TRIM = None  # glibc's malloc_trim, once looked up; False where there is none


def _malloc_trim():
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _TRIM = libc.malloc_trim
                _TRIM.argtypes, _TRIM.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc
                _TRIM = False
    return _TRIM


def release() -> bool:
    """gc.collect(), then glibc's malloc_trim(0) where there is one. True if memory was
    returned to the system (malloc_trim's answer), False otherwise or where it is unavailable."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim else False


def freeze_long_lived() -> None:
    """Collect, then move every object alive now (the imported modules, the built page) to
    gc's permanent generation. A process that lives on after its imports calls it once: the
    full collections that give a finished run's memory back (timing, the proof, the profile:
    about twenty in one profile) then walk only the objects made since, not the millions that
    torch and Gradio leave (benchmarks/RESULTS.md, "gc.freeze")."""
    gc.collect()
    gc.freeze()
