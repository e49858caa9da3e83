#!/usr/bin/env bash
# Set up (venv, CPU torch, graphviz, chromium, test tools) and run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k spec. Whole files go to each worker
# (--dist loadfile): a module's app server, browser and shared profile start once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export GRADIO_ANALYTICS_ENABLED=False
export REQUIRE_BROWSER=1  # the browser tests fail, not skip, if chromium or playwright is missing
export NO_PROXY="localhost,127.0.0.1${NO_PROXY:+,$NO_PROXY}" no_proxy="localhost,127.0.0.1${no_proxy:+,$no_proxy}"
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
