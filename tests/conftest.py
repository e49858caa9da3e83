"""Shared test helpers. Tests run on 2 CPU cores: big presets are checked analytically or on
the meta device; forward passes use small specs."""

import os
import subprocess

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
for _var in ("NO_PROXY", "no_proxy"):
    _hosts = os.environ.get(_var, "")
    if "127.0.0.1" not in _hosts:
        os.environ[_var] = ",".join(h for h in ("localhost,127.0.0.1", _hosts) if h)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one worker per core: two intra-op threads each would only fight over the 2 cores
    import torch

    torch.set_num_threads(1)


def pytest_collection_finish(session):
    """As the app and the CLI do once their imports are done (builder.memory): the full
    collections after each timing, proof and profile then skip the imported modules."""
    from builder.memory import freeze_long_lived

    freeze_long_lived()


@pytest.fixture(scope="module")
def app_url():
    """`python app.py --port N` on a free port, once per test module, stopped after it."""
    from test_app import free_port, launch

    port = free_port()
    process = launch(port)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
