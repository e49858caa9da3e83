"""What a red team broke (issue 16), library and CLI side: each test failed before its fix."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch

from builder import PRESETS, SpecError, compare, learn
from builder.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _cli(*argv, timeout=60):
    return subprocess.run([sys.executable, "-m", "builder", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


# -- item 7: the CLI hangs -------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_config_on_a_fifo_is_refused_at_once(tmp_path):
    """`info --config FIFO` blocked forever in open(), waiting for a writer."""
    fifo = tmp_path / "spec.json"
    os.mkfifo(fifo)
    start = time.monotonic()
    result = _cli("info", "--config", str(fifo), timeout=30)
    assert time.monotonic() - start < 30
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: --config: cannot read {str(fifo)!r}: not a regular file\n"


@pytest.mark.parametrize("path", ["/dev/zero", "/"])
def test_config_on_a_device_or_a_folder_is_refused(path, capsys):
    """/dev/zero was read (1 MiB of NULs, then a JSON error); a folder gave "Is a directory"
    only by luck of open(). Both are refused as not regular files, with one line."""
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    assert main(["info", "--config", path]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"error: --config: cannot read {path!r}: not a regular file\n")


def test_summary_applies_the_guard_before_building(capsys):
    """`summary --form a -C 4096` ran for over 4 minutes at 3.8 GB with no output: the CLI
    summary skipped the guard the app applies (builder.views.summary)."""
    with mock.patch.object(torch.nn.Module, "__init__", side_effect=AssertionError("built")):
        assert main(["summary", "--form", "a", "-C", "4096"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("error: params: ") and "modules: 4.6e5 estimated" in err


# -- item 9: a clean exit on SIGTERM ------------------------------------------------------------
def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def _terminated(argv):
    process = subprocess.Popen([sys.executable, "-m", "builder", *argv], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _catches_sigterm(process.pid):  # importing torch (seconds when loaded)
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(2)  # building, timing or exporting: work under way
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, out, err


SIGTERM_RUNS = {
    "time": ["time", "--preset", "resnext50_32x4d", "--device", "cpu", "--iters", "1000",
             "--batch", "2", "--json"],
    "onnx": ["export", "--preset", "resnext50_32x4d", "--form", "a", "--format", "onnx"],
}


@pytest.mark.parametrize("name", sorted(SIGTERM_RUNS))
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_sigterm_exits_cleanly(name, tmp_path):
    """SIGTERM during a timing or an ONNX export killed the process inside torch: status -15
    here, with no finally block run, and in the app "terminate called without an active
    exception" (an abort). Now the CLI raises SystemExit in the main thread: status 143, one
    line, the run unwound."""
    argv = SIGTERM_RUNS[name]
    if name == "onnx":
        pytest.importorskip("onnxscript")
        argv = [*argv, "-o", str(tmp_path / "model.onnx")]
    code, out, err = _terminated(argv)
    assert code == 143, (code, err)
    assert err.endswith("error: stopped by SIGTERM\n") and "terminate called" not in err, err
    assert out == ""


# -- item 9: pins and the lesson step ----------------------------------------------------------
def test_deeply_nested_pins_are_a_clear_error():
    """JSON nested 30,000 deep (60 KB, under the 64 KiB cap) raised RecursionError."""
    text = "[" * 30_000 + "]" * 30_000
    assert len(text) <= compare.MAX_PINS_JSON
    with pytest.raises(SpecError, match=r"^pins: 'JSON text of 60,000 characters' is not "
                                        r"allowed; JSON nested less deeply"):
        compare.load_pins(text)


def test_a_long_pins_list_is_refused_before_any_entry_is_read():
    """A list of 10^5 entries was validated entry by entry (8.4 s) to keep the last 24."""
    entries = [{"spec": PRESETS["resnet18"].to_dict()}] * 100_000
    with mock.patch.object(compare.ResNeXtSpec, "from_dict",
                           side_effect=AssertionError("read")):
        with pytest.raises(SpecError, match=r"^pins: 'a list of 100,000 entries' is not "
                                            r"allowed; at most 96 entries \(the last 24 are "
                                            r"kept\)$"):
            compare.load_pins(entries)
        with pytest.raises(SpecError, match="^pins: 'dict' is not allowed; expected a list"):
            compare.load_pins({"spec": {}})
    assert len(compare.load_pins(json.dumps(entries[:96]))) == compare.MAX_PINS


@pytest.mark.parametrize("step", ["abc", math.nan, math.inf, -math.inf, 1.5, True, None])
def test_a_lesson_step_that_is_not_a_whole_number_is_a_clear_error(step):
    """int("abc"), int(nan) and int(inf) raised ValueError / OverflowError (the page's
    /learn answered with a generic error); a bool passed as step 1."""
    with pytest.raises(SpecError, match=r"^step: .* is not allowed; expected a whole number "
                                        r"from 0 to 7$"):
        learn.lesson(PRESETS["resnext50_32x4d"], step)


def test_lesson_steps_that_are_whole_numbers_still_clamp():
    spec = PRESETS["resnext50_32x4d"]
    assert learn.lesson(spec, 2.0)["index"] == 2
    assert learn.lesson(spec, 10**30)["index"] == 7 and learn.lesson(spec, -5)["index"] == 0
