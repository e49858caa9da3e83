#!/usr/bin/env bash
# Set up and launch the app on http://127.0.0.1:7860 (GRADIO_SERVER_PORT / _NAME respected).
# Extra arguments go to app.py, e.g. scripts/run.sh --share
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export GRADIO_ANALYTICS_ENABLED=False
export NO_PROXY="localhost,127.0.0.1${NO_PROXY:+,$NO_PROXY}" no_proxy="localhost,127.0.0.1${no_proxy:+,$no_proxy}"
exec .venv/bin/python app.py "$@"
