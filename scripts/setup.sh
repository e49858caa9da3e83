#!/usr/bin/env bash
# Set up everything the project needs on a fresh Debian machine with Python 3.10+:
# Debian's graphviz (the `dot` binary) and python3-venv where missing, a virtual environment in
# .venv, the CPU build of torch where no torch is present, then the requirements. Pass --dev for
# the test tools and chromium. A second run with unchanged requirements installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1
PYTHON=${PYTHON:-python3}

need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
[ -x .venv/bin/python ] || "$PYTHON" -c "import ensurepip" 2>/dev/null || need+=(python3-venv)
[ $dev = 1 ] && ! command -v chromium >/dev/null 2>&1 && need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
py=.venv/bin/python

# What is installed is stamped with a hash of the requirements: unchanged, nothing to do.
files=(requirements.txt); [ $dev = 1 ] && files+=(requirements-dev.txt)
want=$(cat "${files[@]}" | sha256sum | cut -c1-16)
stamp=.venv/.setup-$([ $dev = 1 ] && echo dev || echo app)
dev_want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] ||
   [ "$(cat .venv/.setup-dev 2>/dev/null)" = "$dev_want" ]; then
  exit 0  # (a dev set-up has everything the app needs)
fi

"$py" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# An unpinned torch would pull a multi-GB CUDA build: take the CPU build first, from PyTorch's
# CPU index, or, where that is out of reach, from what pip is configured with (this project's
# CI machines keep the CPU wheel of 2.13.0 on disk). A newer torch already present is kept.
if ! "$py" -c "import torch" 2>/dev/null; then
  log=$(mktemp)
  "$py" -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
      --extra-index-url https://pypi.org/simple --retries 1 --timeout 15 2>"$log" ||
    "$py" -m pip install -q torch==2.13.0 ||
    { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
fi
"$py" -m pip install -q -r "${files[-1]}"
echo "$want" > "$stamp"
