#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine with Python 3.10+:
# Debian's graphviz (the `dot` binary), a virtual environment in .venv, the pinned CPU torch
# where no torch is present, then the requirements. Pass --dev for the test tools and chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1

need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
[ $dev = 1 ] && ! command -v chromium >/dev/null 2>&1 && need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
py=.venv/bin/python
"$py" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# An unpinned torch would pull a multi-GB CUDA build: take the CPU build first.
"$py" -c "import torch" 2>/dev/null || "$py" -m pip install -q torch==2.13.0
if [ $dev = 1 ]; then
  "$py" -m pip install -q -r requirements-dev.txt
else
  "$py" -m pip install -q -r requirements.txt
fi
