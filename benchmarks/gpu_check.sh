#!/usr/bin/env bash
# The GPU checks of issue 14, in under 8 minutes, on a machine whose Python has torch and
# torchvision (not gradio, not torchinfo): the GPU timing tests, the profile of
# resnext50_32x4d in bf16 channels_last batch 128 for the three forms, and
# bench_vs_torchvision on cuda. Prints one table at the end; each part's output is in $LOG.
#
#     PYTHON=python3 bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG=${OUT:-$(mktemp -d)}
export PYTHONPATH=$PWD
rows=()

part() {  # part NAME SECONDS COMMAND...: run with a time limit, keep its output and status
    local name=$1 limit=$2; shift 2
    local begin=$SECONDS
    timeout "$limit" "$@" > "$LOG/$name.txt" 2>&1
    local rc=$?
    rows+=("$(printf '%-22s %4s %5ss  %s' "$name" "$rc" "$((SECONDS - begin))" \
        "$(grep -E "$GREP" "$LOG/$name.txt" | tail -1 | cut -c1-90)")")
}

GREP='passed|failed|error'
part timing-tests 150 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/test_timing.py -k "cuda or gpu"
GREP='form \(c\)|^form|error'
part profile-forms 150 "$PY" -m builder profile --preset resnext50_32x4d --device cuda \
    --dtype bf16 --channels-last --batch 128 --warmup 5 --iters 10 --forms
GREP='ratio|x torchvision|error'
part vs-torchvision 150 "$PY" benchmarks/bench_vs_torchvision.py --device cuda \
    --python "$PY" --no-forms --no-append --iters 20 --warmup 5 --interleaved-rounds 4

echo
printf '%-22s %4s %6s  %s\n' part rc time "last line"
printf '%s\n' "${rows[@]}"
echo "logs: $LOG"
