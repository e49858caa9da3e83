"""The cost model: how long a timing run will take, estimated before running it.

Each form's efficiency and call counts come from builder.registry.
Where the numbers come from: benchmarks/RESULTS.md, "Cost-model constants".
"""

from __future__ import annotations

import torch

from .. import registry
from ..complexity import block_counts, network_counts
from ..network import stage_plans
from ..spec import FORMS, ResNeXtSpec
from . import peak
from .devices import _gpu_lock
from .settings import TRAIN_FLOP_FACTOR, TimingSettings, _check_block

# -- per-form constants: each form's `efficiency` and `calls` in builder.registry --------------
# A form's efficiency is the fraction of the matmul peak it reaches, per device type, for paths
# 4 channels wide (_REFERENCE_PATH_WIDTH); wider paths grow as d ** _PATH_WIDTH_POWER, up to
# the efficiency of the dense form (c).
_DENSE_FORM = "c"
_REFERENCE_PATH_WIDTH = 4
_PATH_WIDTH_POWER = 0.5


def _block_calls(spec: ResNeXtSpec, form: str) -> int:
    """Module calls in one block without a projection (convs, BNs, ReLUs, adds)."""
    per_path, per_block = registry.implementation(spec.block, form).calls
    return spec.cardinality * per_path + per_block


# -- device constants --------------------------------------------------------------------------
_PER_CALL_S = {"cpu": 20e-6, "cuda": 10e-6}  # host time per module call
# Used only where this process has not measured the peak (measure=False): modest devices, so
# that the estimate errs long.
_ASSUMED_PEAK_TFLOPS = {"cpu": {"fp32": 0.1, "bf16": 0.05, "fp16": 0.05},
                        "cuda": {"fp32": 20.0, "tf32": 100.0, "bf16": 200.0, "fp16": 200.0}}
# The estimate never uses a peak below these (per torch thread on the CPU), so that a peak
# measured under load does not make every later estimate long.
_PEAK_FLOOR_TFLOPS = {"cpu": {"fp32": 0.04, "bf16": 0.01, "fp16": 0.004},
                      "cuda": {"fp32": 1.0, "tf32": 1.0, "bf16": 1.0, "fp16": 1.0}}
# torch.compile: a fixed part plus a part per module call (the graph Inductor generates code
# for grows with them); a least-squares fit to cold compiles of ResNeXt-50's three forms on 2
# CPU cores, within 5% of each (RESULTS.md). The GPU's fixed part is a guess, not measured.
_COMPILE_FIXED_S = {"cpu": 12.0, "cuda": 60.0}
_COMPILE_PER_CALL_S = 0.051


def _compile_seconds(device_type: str, calls: int) -> float:
    return _COMPILE_FIXED_S[device_type] + calls * _COMPILE_PER_CALL_S
_PEAK_MEASURE_S = 3.0

# estimate_seconds's positional arguments before TimingSettings (still accepted)
_POSITIONAL = ("batch_size", "device", "mode", "iters", "warmup", "dtype", "compile")


def _module_calls(spec: ResNeXtSpec, form: str) -> int:
    """Module calls in one forward pass (convs, BNs, ReLUs, adds), counted from the spec."""
    calls = 5  # stem and head
    for plan in stage_plans(spec):
        calls += _block_calls(spec, form) * plan.depth + 2  # + the projection's conv and BN
    return calls


def _efficiency(device_type: str, form: str, path_width: int | None) -> float:
    """The fraction of the matmul peak that `form` reaches with paths `path_width` wide (None:
    a dense layer, the stem or the head)."""
    dense = registry.FORMS[_DENSE_FORM].efficiency[device_type]
    entry = registry.FORMS[form]
    own = entry.efficiency.get(device_type, dense)  # a form with no figures: as (c)
    if entry.merge == "dense" or path_width is None:
        return own if entry.merge == "dense" else dense
    scale = (max(path_width, 1) / _REFERENCE_PATH_WIDTH) ** _PATH_WIDTH_POWER
    return min(dense, own * scale)


def _estimate_peak(dev: torch.device, dtype: str, measure: bool) -> tuple[float, float]:
    """(the peak in TFLOP/s the estimate uses, seconds still to spend measuring it)."""
    key = peak._peak_key(dev, dtype)
    if measure and dev.type == "cpu":
        peak.matmul_peak_tflops(dev, dtype)
    elif measure and key not in peak._PEAK_CACHE:
        lock = _gpu_lock(dev)
        if lock.acquire(blocking=False):  # a GPU busy with a run is not measured: no waiting
            try:
                peak.matmul_peak_tflops(dev, dtype)
            finally:
                lock.release()
    floor = _PEAK_FLOOR_TFLOPS[dev.type][dtype] * (
        torch.get_num_threads() if dev.type == "cpu" else 1)
    measured = peak._PEAK_CACHE.get(key) or _ASSUMED_PEAK_TFLOPS[dev.type][dtype]
    return max(measured, floor), 0.0 if key in peak._PEAK_CACHE else _PEAK_MEASURE_S


def _settings(settings, positional: tuple, overrides: dict) -> TimingSettings:
    """A TimingSettings from estimate_seconds's arguments, old style or new."""
    if settings is None or isinstance(settings, TimingSettings):
        if positional:
            raise TypeError("estimate_seconds: after a TimingSettings, give keywords only")
        return TimingSettings.of(settings, **overrides)
    values = (settings, *positional)  # today's (batch_size, device, mode, ...) order
    if len(values) > len(_POSITIONAL):
        raise TypeError(f"estimate_seconds: at most {len(_POSITIONAL)} positional settings")
    named = dict(zip(_POSITIONAL, values, strict=False))
    if set(named) & set(overrides):
        raise TypeError(f"estimate_seconds: {sorted(set(named) & set(overrides))} given twice")
    return TimingSettings(**named, **overrides)


def estimate_seconds(spec: ResNeXtSpec, settings: TimingSettings | int | None = None,
                     *positional, forms: bool = False, measure: bool = True,
                     block: int | None = None, **overrides) -> float:
    """A rough estimate, before running it, of how long `time_model` (or `time_forms`, with
    forms=True) takes with these settings, in seconds; `block`: of one later block of that
    stage (as time_forms(block=...) times it) instead of the whole network. Meant for warning
    before a long CPU run, not as a measurement. `settings`: a TimingSettings, with overrides
    as keywords (its field names); the older estimate_seconds(spec, batch_size, device, mode,
    iters, warmup, dtype, compile) is still accepted.

    How: (warm-up + timed iterations) x, per iteration, the analytic FLOPs (x3 in training) of
    the stem, the head and each stage divided by (peak x the form's efficiency at that
    stage's path width d), plus the module calls x a host time per call; plus the compile
    time when compiling (a fixed part and a part per module call), and the peak's measurement
    if it is still to come. The peak is this
    device's matmul peak measured once per process (now, unless measure=False or the GPU is
    busy with another run of this process: then an assumed modest one), never less than
    _PEAK_FLOOR_TFLOPS."""
    s = _settings(settings, positional, overrides).resolved()
    dev = s.torch_device
    if s.image_size is not None:
        spec = spec.replace(image_size=s.image_size)
    _check_block(spec, block)
    peak_tflops, overhead = _estimate_peak(dev, s.dtype, measure)
    factor = TRAIN_FLOP_FACTOR if s.mode == "train" else 1
    if block is not None:
        plan = stage_plans(spec)[block]
        parts = [(block_counts(spec, plan, first=False).macs, plan.path_width)]
    else:
        counts = network_counts(spec)
        dense = counts.stem.macs + counts.head.macs
        parts = [(dense, None)] + [
            (stage.total.macs, stage.plan.path_width) for stage in counts.stages]
    total = 0.0
    for form in (tuple(FORMS) if forms else (spec.form,)):
        calls = _block_calls(spec, form) if block is not None else _module_calls(spec, form)
        per_iter = sum(2 * macs * s.batch_size * factor
                       / (peak_tflops * 1e12 * _efficiency(dev.type, form, width))
                       for macs, width in parts)
        per_iter += calls * factor * _PER_CALL_S[dev.type]
        total += (s.warmup + s.iters) * per_iter + (_compile_seconds(dev.type, calls)
                                                     if s.compile else 0.0)
    return total + overhead
