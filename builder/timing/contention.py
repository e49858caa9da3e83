"""Other work during a timing: how much CPU the rest of the machine used while the timed
iterations ran, so that a time inflated by it is marked instead of passed off as the model's.

Counted (Linux, from /proc): other processes (all the machine's busy CPU time, /proc/stat,
less this process's own) and the other Python threads of this process (each thread's CPU
time, /proc/self/task/<tid>/stat). torch's own worker threads are not Python threads, so the
timed step's parallel work is not counted against it. Elsewhere nothing is measured (None).

A timing is "contended" when the machine was saturated (its busy CPU, ours included, at least
SATURATED of its cores) and other work kept at least OTHER_CORES cores busy on average: then
the timed step had to share cores it would otherwise have had. Runs shorter than MIN_SECONDS
are measured but never flagged: /proc counts CPU time in 10 ms ticks."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

SATURATED = 0.9  # of the machine's cores busy, on average over the run
OTHER_CORES = 0.5  # cores kept busy by other work, on average over the run
MIN_SECONDS = 0.2  # /proc counts in ticks (10 ms): a shorter run is measured, never flagged
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Snapshot:
    wall: float  # time.perf_counter()
    machine_busy: float  # seconds of busy CPU, all cores, all processes
    cores: int  # the cpuN lines of /proc/stat
    process: float  # this process's CPU seconds (all its threads)
    threads: dict[int, float]  # other Python threads' native id -> CPU seconds


@dataclass(frozen=True)
class Contention:
    """Average cores busy over the run: by other processes, by this process's other Python
    threads, and by everything (ours included); the machine's core count."""

    other_processes: float
    other_threads: float
    machine: float
    cores: int
    seconds: float

    @property
    def other(self) -> float:
        return self.other_processes + self.other_threads

    @property
    def contended(self) -> bool:
        return (self.seconds >= MIN_SECONDS and self.machine >= SATURATED * self.cores
                and self.other >= OTHER_CORES)

    def note(self) -> str:
        return (f"contended: other work kept {self.other:.1f} of this machine's {self.cores} "
                f"cores busy during the run ({self.other_processes:.1f} in other processes, "
                f"{self.other_threads:.1f} in this one's other threads), and the machine was "
                f"saturated ({self.machine:.1f} cores busy): these times are probably inflated;"
                " time again when the machine is quiet")

    def to_dict(self) -> dict:
        return {"other_processes_cores": self.other_processes,
                "other_threads_cores": self.other_threads, "machine_cores_busy": self.machine,
                "cores": self.cores, "seconds": self.seconds, "contended": self.contended}


def _machine() -> tuple[float, int]:
    with open("/proc/stat", encoding="ascii") as stat:
        lines = stat.read().splitlines()
    fields = [int(v) for v in lines[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    busy = sum(fields[:3]) + sum(fields[5:8])
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return busy / _TICK, cores


def _thread_cpu(tid: int) -> float | None:
    try:
        with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:  # the thread ended
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def snapshot() -> Snapshot | None:
    """Now, or None where /proc is not there to read."""
    try:
        busy, cores = _machine()
    except (OSError, ValueError, IndexError):
        return None
    me = threading.get_native_id()
    threads = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is not None and tid != me:
            cpu = _thread_cpu(tid)
            if cpu is not None:
                threads[tid] = cpu
    times = os.times()
    return Snapshot(time.perf_counter(), busy, cores, times.user + times.system, threads)


def between(before: Snapshot | None, after: Snapshot | None) -> Contention | None:
    """The other work between two snapshots, or None where either is missing."""
    if before is None or after is None:
        return None
    seconds = after.wall - before.wall
    if seconds <= 0:
        return None
    machine = max(0.0, after.machine_busy - before.machine_busy)
    ours = max(0.0, after.process - before.process)
    threads = sum(max(0.0, cpu - before.threads[tid]) for tid, cpu in after.threads.items()
                  if tid in before.threads)
    return Contention(other_processes=max(0.0, machine - ours) / seconds,
                      other_threads=threads / seconds, machine=machine / seconds,
                      cores=after.cores, seconds=seconds)
