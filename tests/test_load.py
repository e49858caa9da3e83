"""The load smoke test (issue 7, item 4) and a client disconnecting mid-request (item 3).

A short version of benchmarks/load_app.py, run with its own helpers against the app launched
on a free port through the script's timing wrapper (app.py run as __main__ with
builder.timing's entry points logging server-side start and end times), so that "timing
requests are serialised" is observed in the app's process rather than guessed from the
client. No latency is asserted here: latency belongs to the full load script.
"""

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import pytest

from builder import PRESETS, count_macs, count_params

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("load_app", ROOT / "benchmarks" / "load_app.py")
load_app = sys.modules.setdefault("load_app", importlib.util.module_from_spec(_spec))
if not hasattr(load_app, "run_load"):
    _spec.loader.exec_module(load_app)

TINY = load_app.TIMING_SPEC
# a CPU timing of a few seconds, to cancel mid-run
LONG = PRESETS["resnext29_8x64d"].replace(depths=(1, 1, 1))

pytestmark = pytest.mark.slow  # each test drives the launched app for several seconds


@pytest.fixture(scope="module")
def app():
    app = load_app.launch()
    yield app
    app.stop()


def new_client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def runs_since(app, count):
    """The server-side timing runs logged after the first `count`."""
    return app.timing_intervals()[count:]


def overlap(a, b):
    return min(a["end"], b["end"]) - max(a["start"], b["start"])


def test_concurrent_builds_and_timings(app):
    before = len(app.timing_intervals())
    load = load_app.run_load(app, sessions=3, builds=3, timers=2, rounds=1, seed=7)
    assert [(c.endpoint, c.worker, c.error) for c in load.failures] == [], app.log_tail()
    builds = load.of("/build")
    assert len(builds) == 9 and len(load.of("/time")) == 2
    assert all(c.params == count_params(c.spec) for c in builds)
    assert len({c.spec for c in builds}) > 1  # random specs, not one spec nine times
    # the two /time requests were sent at once; the app ran them one after the other
    first, second = sorted(runs_since(app, before), key=lambda r: r["start"])
    assert first["ok"] and second["ok"]
    assert second["start"] >= first["end"]
    assert load.serialised() is True
    assert load.rss and all(kib > 0 for _, kib in load.rss)


def start_then_cancel(app, client, spec, batch, wait=True):
    """Submit a /time run (as confirmed: the app's estimate depends on the machine's load),
    wait until the app has started timing it (its progress message comes just before
    builder.timing is called), then cancel the job and close the client; with wait=False
    in a thread (the app answers the cancel request only once the run is stopped), which is
    returned."""
    from gradio_client.utils import Status

    job = client.submit(*load_app.timing_args(spec, batch), api_name="/time_confirmed")
    deadline = time.monotonic() + 120
    while job.status().code != Status.PROGRESS:
        assert not job.done(), f"the run ended before it could be cancelled: {job.result()}"
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.01)
    time.sleep(0.3)  # inside builder.timing now

    def cancel():
        assert job.cancel() is True
        client.close()

    if wait:
        cancel()
        return job
    thread = threading.Thread(target=cancel)
    thread.start()
    return thread


def check_served(client):
    """A new client's /build and /time both answer, with the exact results."""
    config = {"preset": "resnext50_32x4d", "cardinality": 8, "form": "b", "image_size": 64}
    spec = PRESETS["resnext50_32x4d"].replace(cardinality=8, form="b", image_size=64)
    out = client.predict(json.dumps(config), api_name="/build")
    assert (out["name"], out["spec"], out["params"], out["macs"], out["flops"]) == (
        "ResNeXt-50 (8x4d)", spec.to_dict(), count_params(spec), count_macs(spec),
        2 * count_macs(spec))
    assert sum(r["params"] for r in out["summary_rows"]) == count_params(spec)
    message, table, _, last_times, _ = client.predict(*load_app.timing_args(TINY, 1),
                                                   api_name="/time")
    assert message.startswith("Ran on **CPU: ")
    assert load_app.check_time((message, table), TINY, 1) is None
    row = table["data"][0]
    assert (row[0], row[1]) == ("1", "ResNeXt-5 (2x4d) form (c)")
    assert row[9].startswith("batch 1, 16×16, inference, fp32, eager, 2 warm-up + 10 iterations")
    assert list(json.loads(last_times)) == [TINY.to_json(indent=None)]


def test_a_new_client_is_served_after_one_cancels_mid_timing(app):
    before = len(app.timing_intervals())
    job = start_then_cancel(app, new_client(app), LONG, 1)
    check_served(new_client(app))
    assert job.status().code.name in ("CANCELLED", "FINISHED")
    # the cancelled run had started, so the app finishes it in its thread and logs it
    deadline = time.monotonic() + 120
    while len(runs_since(app, before)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    runs = runs_since(app, before)
    assert len(runs) == 2 and all(r["ok"] for r in runs)


def test_a_cancelled_timing_run_still_holds_the_device(app):
    """Cancelling a running /time frees Gradio's "device" slot at once, while the worker
    thread goes on timing: app.DEVICE_LOCK keeps the next run from measuring beside it."""
    waiting = new_client(app)  # connected first, so that it asks at once
    before = len(app.timing_intervals())
    cancelling = start_then_cancel(app, new_client(app), LONG, 4, wait=False)
    time.sleep(0.2)  # the cancel request is in; the cancelled run goes on for a second or two
    message, *_ = waiting.predict(*load_app.timing_args(TINY, 1), api_name="/time")
    cancelling.join()
    assert message.startswith("Ran on **CPU: ")
    deadline = time.monotonic() + 120  # the cancelled run is logged when it ends
    while len(runs_since(app, before)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    cancelled, served = sorted(runs_since(app, before), key=lambda r: r["start"])
    assert overlap(cancelled, served) <= 0, (
        f"the next timing run ran {overlap(cancelled, served):.2f} s beside the cancelled one "
        f"(cancelled: {cancelled['end'] - cancelled['start']:.2f} s, next: "
        f"{served['end'] - served['start']:.2f} s)")
