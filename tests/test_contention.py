"""Other work during a timing is measured and a saturated machine marks the result (issue 16,
item 6): a busy thread in this process, and the arithmetic on fixed snapshots."""

import dataclasses
import hashlib
import os
import threading

import pytest

from builder import ResNeXtSpec
from builder import timing as T
from builder.timing import contention as C

SPEC = ResNeXtSpec(cardinality=4, width_per_group=4, depths=(1, 1), stem="cifar", image_size=32,
                   num_classes=10)


def snap(wall, busy, process, threads, cores=2):
    return C.Snapshot(wall=wall, machine_busy=busy, cores=cores, process=process,
                      threads=threads)


def test_the_arithmetic_on_fixed_snapshots():
    """Over 2 s: the machine busy 3.8 s of CPU (1.9 cores), this process 2.6 s (of which its
    other Python threads 1.0 s, thread 7; thread 9 ended, thread 8 began: neither counted)."""
    before = snap(10.0, 100.0, 50.0, {7: 3.0, 9: 1.0})
    after = snap(12.0, 103.8, 52.6, {7: 4.0, 8: 5.0})
    found = C.between(before, after)
    assert found.seconds == 2.0 and found.cores == 2
    assert found.machine == pytest.approx(1.9)
    assert found.other_processes == pytest.approx(0.6)  # (3.8 - 2.6) / 2
    assert found.other_threads == pytest.approx(0.5)
    assert found.other == pytest.approx(1.1) and found.contended
    assert found.note().startswith("contended: other work kept 1.1 of this machine's 2 cores "
                                   "busy during the run (0.6 in other processes, 0.5 in this "
                                   "one's other threads), and the machine was saturated (1.9 "
                                   "cores busy)")


@pytest.mark.parametrize("case, after", [
    ("not saturated: 1.7 of 2 cores busy", snap(12.0, 103.4, 52.6, {7: 4.0})),
    ("other work under half a core", snap(12.0, 103.8, 53.4, {7: 3.4})),
    ("too short to tell (0.1 s)", snap(10.1, 100.2, 50.1, {7: 3.1})),
])
def test_what_is_not_flagged(case, after):
    found = C.between(snap(10.0, 100.0, 50.0, {7: 3.0}), after)
    assert not found.contended, case


def test_no_proc_no_measurement():
    assert C.between(None, snap(1.0, 1.0, 1.0, {})) is None


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc: contention is measured "
                    "on Linux only")
def test_a_timing_beside_busy_threads_is_marked_contended(monkeypatch):
    """One busy thread per core (hashing releases the GIL, so each takes a core): the machine
    is saturated and at least half a core went to other work."""
    stop = threading.Event()

    def busy():
        data = b"x" * 2**20
        while not stop.is_set():
            hashlib.sha256(data).digest()

    # the peak is not measured here (seconds, and beside these threads far too low)
    monkeypatch.setitem(T.peak._PEAK_CACHE, T.peak._peak_key(T.resolve_device("cpu"), "fp32"),
                        1e9)
    workers = [threading.Thread(target=busy, daemon=True) for _ in range(os.cpu_count() or 2)]
    for worker in workers:
        worker.start()
    try:
        result = T.time_model(SPEC, batch_size=8, device="cpu", warmup=1, iters=40)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    found = result.contention
    assert found["seconds"] >= C.MIN_SECONDS, found  # long enough to be judged
    # the threads are counted: alone here they take well over a core, but the suite's other
    # worker shares the 2 cores (measured 0.48 of a core for them then, 1.27 for it), so the
    # bound is 0.2; the verdict needs other work >= 0.5 core in all
    assert found["other_threads_cores"] >= 0.2, found
    assert found["other_threads_cores"] + found["other_processes_cores"] >= 0.5, found
    assert result.contended and result.to_dict()["contended"] is True
    assert [n for n in result.notes if n.startswith("contended: ")] and "contended: " in (
        result.summary())


def test_the_page_marks_a_contended_result():
    from ui import timing as tab

    quiet = T.time_model(SPEC, batch_size=1, device="cpu", warmup=0, iters=1)
    found = C.between(snap(10.0, 100.0, 50.0, {7: 3.0}), snap(12.0, 103.8, 52.6, {7: 4.0}))
    loaded = dataclasses.replace(quiet, contended=True, contention=found.to_dict(),
                                 notes=[*quiet.notes, found.note()])
    out = tab._shown([loaded, quiet], SPEC, "network", False, [], "{}")
    assert f"**{SPEC.name} form (c):** {found.note()}" in out["time_message"]
    assert out["time_message"].count("contended: ") == 1  # the quiet one says nothing
    iqr = [row[6] for row in out["time_table"]["data"]]
    assert iqr[1].endswith(" (contended)") and not iqr[0].endswith(" (contended)")
