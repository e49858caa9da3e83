"""The entry points: time_model (a spec or a model) and time_forms (forms (a), (b), (c) with
the same weights), each taking one TimingSettings (or its fields as keywords)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import fold, registry
from ..complexity import network_counts
from ..convert import convert, randomize_
from ..memory import release
from ..network import build_model, stage_plans
from ..spec import FORMS, ResNeXtSpec
from . import peak
from .devices import DTYPES, _gpu_lock, device_name, device_total_memory
from .results import TimingResult
from .runner import _attempt_or_advice, _Plan, _Run
from .settings import TRAIN_FLOP_FACTOR, TimingSettings, _check_block, _check_progress
from .stats import Stats, summarize


def _source(spec_or_model, image_size, seed):
    """(pristine model, spec or None, image size) for a spec or a model."""
    if isinstance(spec_or_model, ResNeXtSpec):
        spec = spec_or_model if image_size is None else spec_or_model.replace(
            image_size=image_size)
        torch.manual_seed(seed)
        return randomize_(build_model(spec), seed), spec, spec.image_size
    if isinstance(spec_or_model, nn.Module):
        spec = getattr(spec_or_model, "spec", None)
        if isinstance(spec, ResNeXtSpec):
            spec = spec if image_size is None else spec.replace(image_size=image_size)
            return spec_or_model, spec, spec.image_size
        return spec_or_model, None, 224 if image_size is None else image_size
    raise TypeError("time_model expects a ResNeXtSpec or a torch.nn.Module, got "
                    f"{type(spec_or_model).__name__}")


def _num_classes(model: nn.Module, spec: ResNeXtSpec | None) -> int | None:
    if spec is not None:
        return spec.num_classes
    fc = getattr(model, "fc", None)
    return fc.out_features if isinstance(fc, nn.Linear) else None



def time_model(spec_or_model, settings: TimingSettings | None = None, *,
               progress: Callable[[float, str], None] | None = None,
               **overrides) -> TimingResult:
    """Time a spec (built with random weights and BN statistics) or a model (timed on a copy,
    its `.spec` giving the multiply-adds) on one random batch.

    `settings`: a TimingSettings (see its fields); `overrides`: its field names as keywords,
    put into it (time_model(spec, batch_size=4, device="cpu") works without one).
    `progress(fraction, text)` is called as the run goes: fractions from 0 to 1, never
    decreasing, ending at 1.0; texts such as "warm-up 1/2", "iteration 3/10", "measuring the
    matmul peak", "done". `deadline_s` is checked before each warm-up and timed iteration and
    before the matmul peak is measured (on a GPU the host checks as it queues iterations, and
    once more after synchronising).

    Raises:
        TimingSettingError: a setting this machine cannot honour (say, tf32 on the CPU).
        TimingError: out of memory (naming a batch size that fits), a failed compile, a
            folded model that does not match, or the time limit exceeded (naming it and how
            far the run got).
    """
    _check_progress(progress)
    settings = TimingSettings.of(settings, **overrides)
    try:
        return _time_model(_Run(progress, settings.deadline_s), spec_or_model, settings=settings)
    finally:
        release()  # the timed copies are gone: give their memory back to the system


def _time_model(run: _Run, spec_or_model, settings: TimingSettings) -> TimingResult:
    """time_model, reporting into `run` (one part of time_forms, or the whole)."""
    s = settings.resolved()
    dev = s.torch_device
    pristine, spec, size = _source(spec_or_model, s.image_size, s.seed)
    macs = s.macs
    if s.input_shape is not None:
        input_shape, size = s.input_shape, s.input_shape[-1]
    else:
        input_shape = (spec.in_channels if spec is not None else 3, size, size)
    if macs is None and spec is not None and input_shape[1:] == (size, size):
        macs = network_counts(spec).macs
    # cudagraph trees record on the third call
    warmup = max(s.warmup, 3) if s.compile and s.cuda_graphs else s.warmup
    benchmark = dev.type == "cuda" and s.cudnn_benchmark is not False  # None: on, on a GPU
    plan = _Plan(dev, s.dtype, s.channels_last, benchmark, s.compile, s.cuda_graphs, s.mode,
                 s.fast, warmup, s.iters, s.seed, input_shape, _num_classes(pristine, spec),
                 s.cross_check, s.freeze)
    with _gpu_lock(dev):
        raw = _attempt_or_advice(run, pristine, plan, s.batch_size)
        return _result(run, raw, pristine, spec, plan, s.batch_size, size, macs, s.name)


def _result(run: _Run, raw: dict, pristine: nn.Module, spec: ResNeXtSpec | None, plan: _Plan,
            batch_size: int, size: int, macs: int | None, name: str | None) -> TimingResult:
    """The statistics, the TFLOP/s against the peak, every setting and the notes."""
    dev, dtype = plan.device, plan.dtype
    stats = summarize(raw["times_ms"])
    tflops = measured = percent = None
    if macs is not None:
        factor = TRAIN_FLOP_FACTOR if plan.mode == "train" else 1
        tflops = 2 * macs * batch_size * factor / (stats.median / 1000) / 1e12
        if peak._peak_key(dev, dtype) not in peak._PEAK_CACHE:
            run.check()
            run.report((plan.units - 1) / plan.units, "measuring the matmul peak")
        measured = peak.matmul_peak_tflops(dev, dtype)
        if tflops > measured:  # a peak measured under load is too low: again, keep the larger
            measured = peak.refresh_peak(dev, dtype)
        percent = tflops / measured * 100
    if name is None:
        name = (f"{spec.name} form ({spec.form})" if spec is not None
                else type(pristine).__name__)
    settings = _record(run, raw, spec, plan, batch_size, size, macs)
    notes = _notes(dev, stats, tflops, measured, percent, raw)
    run.report(1.0, "done")
    return TimingResult(
        name=name, batch_size=batch_size, image_size=size, median_ms=stats.median,
        min_ms=stats.min, max_ms=stats.max, q1_ms=stats.q1, q3_ms=stats.q3, iqr_ms=stats.iqr,
        images_per_s=batch_size / stats.median * 1000, macs_per_image=macs, tflops=tflops,
        peak_tflops=measured, peak_percent=percent, peak_memory_bytes=raw["peak_memory_bytes"],
        device_type=dev.type, device_name=device_name(dev), torch_version=torch.__version__,
        settings=settings, noisy=stats.noisy, times_ms=raw["times_ms"],
        fold_rel_error=raw["fold_rel_error"], check_median_ms=raw["check_median_ms"],
        notes=notes, form=_form_of(pristine, spec), compile_s=raw.get("compile_s"),
        contention=None if raw["contention"] is None else raw["contention"].to_dict(),
        contended=raw["contention"] is not None and raw["contention"].contended)


def _form_of(pristine: nn.Module, spec: ResNeXtSpec | None) -> str | None:
    if spec is not None:
        return spec.form
    entry = registry.of_module(pristine)  # one block, timed alone
    return None if entry is None else entry[1].key


def _record(run: _Run, raw: dict, spec: ResNeXtSpec | None, plan: _Plan, batch_size: int,
            size: int, macs: int | None) -> dict:
    """Every setting used, as TimingResult.settings records it."""
    dev, dtype, mode = plan.device, plan.dtype, plan.mode
    cuda = dev.type == "cuda"
    train = mode == "train"
    return {
        "device": str(dev), "dtype": dtype,
        "autocast": None if DTYPES[dtype] is None else str(DTYPES[dtype]).split(".")[-1],
        "tf32": dtype == "tf32" if cuda else None,
        "channels_last": plan.channels_last,
        "cudnn_benchmark": plan.cudnn_benchmark if cuda else None,
        "compile": plan.compile, "compile_mode": plan.compile_mode,
        "cuda_graphs": plan.cuda_graphs, "freeze": plan.freeze,
        "mode": mode, "fast": plan.fast, "batch_size": batch_size, "image_size": size,
        "input_shape": list(plan.input_shape), "warmup": plan.warmup, "iters": plan.iters,
        "seed": plan.seed, "threads": torch.get_num_threads(), "cross_check": plan.cross_check,
        "deadline_s": run.deadline_s,
        "timer": "CUDA events" if cuda else "time.perf_counter",
        "optimizer": "SGD(lr=0.01, momentum=0.9)" if train else None,
        "grad_scaler": train and dtype == "fp16",
        "flops_per_step": None if macs is None else 2 * macs * batch_size * (
            TRAIN_FLOP_FACTOR if train else 1),
        "cuda_version": torch.version.cuda if cuda else None,
        "cudnn_version": torch.backends.cudnn.version() if cuda else None,
        "device_total_memory_bytes": device_total_memory(dev),
        "cudagraph_skips": raw["cudagraph_skips"],
        "spec": None if spec is None else spec.to_dict(),
    }


def _notes(dev: torch.device, stats: Stats, tflops: float | None, measured: float | None,
           percent: float | None, raw: dict) -> list[str]:
    notes = []
    if dev.type == "cpu":
        notes.append(f"timed on the CPU ({torch.get_num_threads()} threads)")
    if raw["contention"] is not None and raw["contention"].contended:
        notes.append(raw["contention"].note())
    if stats.noisy:
        notes.append("noisy: the IQR is at least 10% of the median (other work on this "
                     "machine?); compare medians of repeated runs")
    if percent is not None and percent > 100:
        notes.append(f"above the peak: {tflops:.3g} TFLOP/s is {percent:.0f}% of the "
                     f"{measured:.3g} TFLOP/s matmul peak measured in this process; that peak "
                     "was probably measured while other work loaded the machine (or the "
                     "convolutions used a fast algorithm, such as Winograd's, that does fewer "
                     "multiply-adds than the analytic count); % of peak is no bound here")
    if raw["cudagraph_skips"]:
        notes.append(f"torch.compile declined CUDA graphs {raw['cudagraph_skips']} time(s) "
                     "(see its cudagraphs log): part of the step ran without them")
    return notes


def one_block(spec: ResNeXtSpec, stage: int = 0, seed: int = 0):
    """builder.fold.one_block, with a stage the spec does not have as TimingSettingError."""
    _check_block(spec, stage)
    return fold.one_block(spec, stage, seed)


def time_forms(spec: ResNeXtSpec, settings: TimingSettings | None = None, *,
               block: int | None = None, progress: Callable[[float, str], None] | None = None,
               **overrides) -> list[TimingResult]:
    """Time forms (a), (b), (c) of the same spec with the same weights and settings, in that
    order: the same function, at different speeds. `block`: time one block of that stage
    (0 = conv2) instead of the whole network. `progress(fraction, text)`: each form takes a
    third of the way, its texts start with "form (a): " and so on. `deadline_s`: one limit for
    all three forms, checked between forms and between iterations. `settings` and `overrides`
    as time_model's."""
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"time_forms expects a ResNeXtSpec, got {type(spec).__name__}")
    _check_progress(progress)
    settings = TimingSettings.of(settings, **overrides)
    run = _Run(progress, settings.deadline_s)
    forms = tuple(FORMS)
    if block is not None:
        modules, shape, macs = one_block(spec, block, settings.seed)
        paper = stage_plans(spec)[block].paper_name
        make = {form: (lambda form=form, modules=modules: modules[form]) for form in forms}
        del modules
        per_form = {form: TimingSettings.of(settings, input_shape=shape, macs=macs,
                                            name=f"{spec.name} {paper} block form ({form})")
                    for form in forms}
    else:
        torch.manual_seed(settings.seed)
        base = randomize_(build_model(spec.replace(form="c")), settings.seed)
        make = {form: (lambda form=form, base=base: convert(base, form)) for form in forms}
        del base
        per_form = dict.fromkeys(forms, settings)
    try:
        return _time_forms(run, make, per_form)
    finally:
        del make  # the models: give their memory back to the system
        release()


def _time_forms(run, make, per_form) -> list[TimingResult]:
    results = []
    for index, form in enumerate(per_form):
        part = run.part(index, len(per_form), f"form ({form}): ")
        part.where = f"the start of form ({form})"
        part.check()  # between forms
        results.append(_time_model(part, make[form](), settings=per_form[form]))
        run.finished.append(f"form ({form})")
    return results
