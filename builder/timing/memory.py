"""Memory, estimated and measured: builder.guards' estimate beside the peak a step really
allocates, for inference and a training step, per form.

Measured: on a GPU torch.cuda.max_memory_allocated over one step (after a warm-up step, so
that the optimizer's momentum buffers exist, as they do in the estimate). On the CPU, which
keeps no allocator statistics, what is held before the step (parameters, buffers, momentum,
the batch) plus the peak of torch.profiler's memory events during it (profile_memory=True:
each allocation and free, in order). Both count everything alive at the peak, which is what
the estimate (parameters x3 in training + activations) is meant to bound.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .. import guards
from ..convert import convert, randomize_
from ..network import build_model
from ..spec import ResNeXtSpec
from . import quiet
from .devices import _gpu_lock, _numerics, _on_device, _release, _sync
from .runner import _inference_step, _train_step
from .settings import TimingSettings

MODES = ("inference", "train")


@dataclass(frozen=True)
class MemoryRow:
    form: str
    mode: str  # "inference" or "train"
    estimated_bytes: int  # builder.guards.estimate(...).memory_bytes
    measured_bytes: int
    how: str  # what was measured

    @property
    def ratio(self) -> float:
        """estimated / measured: 1.0 when the estimate is exact."""
        return self.estimated_bytes / self.measured_bytes

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "ratio": self.ratio}


def _held_bytes(*groups) -> int:
    """Bytes of distinct storages among these tensors."""
    seen = {}
    for group in groups:
        for t in group:
            if isinstance(t, torch.Tensor):
                seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def _cpu_peak(step) -> int:
    """Peak bytes allocated (net of frees) during `step()`, by the profiler's memory events."""
    with quiet.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                       profile_memory=True) as prof:
        step()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    now = peak = 0
    for event in events:
        now += event.self_cpu_memory_usage
        peak = max(peak, now)
    return peak


def measure_memory(spec: ResNeXtSpec, settings: TimingSettings | None = None, forms=None,
                   modes=MODES, **overrides) -> list[MemoryRow]:
    """One row per form (default: the spec's) and mode: the guards' estimate and the measured
    peak of one step (see the module docstring). Under the guards, before anything is built."""
    from .profile import _check_forms, _plan

    settings = TimingSettings.of(settings, **overrides)
    s = settings.resolved()
    if s.image_size is not None:
        spec = spec.replace(image_size=s.image_size)
    order = _check_forms(forms) or (spec.form,)
    dev = s.torch_device
    dtype_bytes = 2 if s.dtype in ("bf16", "fp16") else 4
    limits = guards.Limits.for_device(dev.type)
    torch.manual_seed(s.seed)
    base = randomize_(build_model(spec.replace(form="c")), s.seed)
    rows = []
    with _gpu_lock(dev), _on_device(dev):
        for form in order:
            for mode in modes:
                guard_mode = "training" if mode == "train" else "inference"
                estimate = guards.check(spec.replace(form=form), s.batch_size, limits,
                                        guard_mode, dtype_bytes)
                plan = _plan(dataclasses.replace(s, mode=mode), spec)
                measured, how = _measure_one(convert(base, form), plan, s.batch_size)
                rows.append(MemoryRow(form, mode, estimate.memory_bytes, measured, how))
    return rows


def _measure_one(model, plan, batch_size: int) -> tuple[int, str]:
    dev, held = plan.device, {}
    try:
        _release(dev)
        from .profile import placed  # profile imports this module's caller side lazily too

        model, batch, generator = placed(model, plan, batch_size)
        with _numerics(dev, plan.dtype, plan.cudnn_benchmark):
            if plan.mode == "inference":
                step = _inference_step(model.eval(), batch, plan, held)
            else:
                step, _ = _train_step(model.train(), batch, plan, generator, held)
            step()  # warm-up: the momentum buffers, lazily made state
            _sync(dev)
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
                step()
                _sync(dev)
                return torch.cuda.max_memory_allocated(dev), "torch.cuda.max_memory_allocated"
            optimizer = held.get("optimizer")
            state = [t for v in (optimizer.state.values() if optimizer else ())
                     for t in v.values()]
            before = _held_bytes(model.parameters(), model.buffers(), state,
                                 [batch, held.get("labels")])
            return before + _cpu_peak(step), ("held before the step + torch.profiler's "
                                              "memory events (peak)")
    finally:
        held.clear()
        _release(dev)
