"""Where the time goes: torch.profiler over a few iterations after warm-up, per layer.

Every module call is wrapped in a `record_function("module::<path>")` scope by forward pre-
and post-hooks, so each operator the profiler records lies inside the scope of the module that
ran it. A leaf module's (a conv's, a BN's, a ReLU's) time is its scope's total: CPU time on
the CPU, its kernels' time on a GPU. The operators a block runs itself, outside its layers
(form (a)'s sum of paths, form (b)'s concatenation, the shortcut add), are a row of their own,
`<block> (own ops)`. What is left of a step is the framework: Python between modules, the
hooks, autocast and inference-mode entry; `other_ms` says how much.

In training the layer rows cover the forward pass (hooks see no backward); the backward and
the optimizer step are one row, `(backward and optimizer)`. With torch.compile, Inductor fuses
across module boundaries and no layer can be timed: `layers` is empty, totals and operator
counts remain. CUDA graphs replay without the profiler seeing layers: refused.

The profiler's own overhead: the same step timed without the profiler and the hooks
(`plain_ms`, the median of the timed iterations, half of them before the profiled ones and half
after: `plain_drift` says how far the two halves differ) against the profiled wall time.

Per layer: multiply-adds for the batch from the module's shapes (a conv: output elements x
in/groups x k x k; a Linear: in x out x rows; a BN: 2 per channel per image, builder.complexity's
convention, so the layers add up to the analytic count), bytes moved (weights + input + output
activations in the dtype), intensity FLOP/byte (FLOP = 2 x MAC) and achieved TFLOP/s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import guards
from ..convert import convert, randomize_
from ..network import build_model
from ..registry import FORMS
from ..spec import ResNeXtSpec
from . import breakdown, peak, quiet
from .clock import _time_calls
from .devices import (
    _gpu_lock,
    _numerics,
    _on_device,
    _release,
    _sync,
    device_name,
    device_total_memory,
)
from .errors import TimingSettingError
from .runner import (
    _COMPILE_LOCK,
    _fold_checked,
    _inference_step,
    _Plan,
    _reset_compiler,
    _Run,
    _train_step,
)
from .settings import TimingSettings, _check_progress

SCOPE = "module::"
STEP = "profile::step"
MAX_PROFILED = 5  # profiled iterations: enough to average, few enough to keep the trace small
SUM_BOUND = 0.15  # layers + own ops must cover the profiled step within this (inference)


@dataclass(frozen=True)
class LayerProfile:
    """One leaf module (or a block's own operators) over one iteration."""

    name: str  # module path, "layer1.0.conv2"; a block's own ops: "layer1.0 (own ops)"
    kind: str  # class name: "Conv2d"; "ops" for a block's own operators
    kernel_size: str  # "3x3", "" where none
    groups: int | None  # a convolution's groups, else None
    calls: int  # calls per iteration
    self_ms: float  # per iteration
    percent: float  # of total_ms
    macs: int  # multiply-adds per iteration (the whole batch)
    bytes: int  # weights + input + output activations per iteration, in the dtype
    intensity: float | None  # FLOP / byte
    tflops: float | None  # 2 x macs / self time

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def cells(self) -> list[str]:
        """The row as text, in LAYER_COLUMNS' order (the page's table and the CLI's)."""
        def num(value, fmt: str) -> str:
            return "" if value is None else format(value, fmt)
        return [self.name, self.kind, self.kernel_size, num(self.groups, "d"),
                "" if self.calls is None else str(self.calls), f"{self.self_ms:.3f}",
                f"{self.percent:.1f}", f"{self.macs / 1e6:.2f}", f"{self.bytes / 1e6:.2f}",
                num(self.intensity, ".3g"), num(self.tflops, ".3g")]


LAYER_COLUMNS = ("layer", "kind", "kernel", "groups", "calls", "self ms", "%", "MMAC", "MB",
                 "FLOP/B", "TFLOP/s")


@dataclass
class FormProfile:
    """One model (one form) profiled."""

    form: str
    name: str
    total_ms: float  # a profiled step: CPU wall time of the step scope; GPU: its kernels
    plain_ms: float  # the same step, no profiler and no hooks: the median of `iters`
    profiled_wall_ms: float  # wall time of a profiled step (median)
    op_calls: int  # aten operators called from Python per iteration
    kernels: int  # GPU kernels per iteration; CPU: innermost aten operators (they do the work)
    layers: list[LayerProfile] = field(default_factory=list)  # sorted by self_ms, largest first
    layers_ms: float = 0.0  # leaf layers + blocks' own ops
    other_ms: float = 0.0  # total_ms - layers_ms: the framework, outside modules
    macs: int = 0  # sum over layers
    # |median before - median after| / plain_ms: the plain iterations run half before and half
    # after the profiled ones, so that a machine that changed pace in between shows here
    plain_drift: float = 0.0

    @property
    def overhead(self) -> float:
        """The profiler's own cost: profiled wall time / plain time - 1."""
        return self.profiled_wall_ms / self.plain_ms - 1

    @property
    def coverage(self) -> float:
        """layers_ms / total_ms: 1.0 when the layers account for every millisecond."""
        return self.layers_ms / self.total_ms if self.total_ms else 0.0

    def totals(self) -> LayerProfile:
        """Every layer row summed, as one row: self time and % of the step (the coverage),
        multiply-adds, bytes, and the intensity and TFLOP/s of them all together."""
        macs, moved = sum(r.macs for r in self.layers), sum(r.bytes for r in self.layers)
        ms = self.layers_ms
        return LayerProfile(
            name=f"(all {len(self.layers)} rows)", kind="", kernel_size="", groups=None,
            calls=sum(r.calls for r in self.layers), self_ms=ms, percent=100 * self.coverage,
            macs=macs, bytes=moved, intensity=2 * macs / moved if moved and macs else None,
            tflops=2 * macs / (ms / 1e3) / 1e12 if ms > 0 and macs else None)

    def to_dict(self) -> dict:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "layers"}
        data.update(layers=[layer.to_dict() for layer in self.layers],
                    overhead=self.overhead, coverage=self.coverage)
        return data


@dataclass
class ProfileResult:
    spec: ResNeXtSpec
    form: str  # the spec's form: the top-level total and layers are its
    forms: dict[str, FormProfile]
    settings: dict
    peak_tflops: float
    bandwidth_gbs: float
    device_type: str
    device_name: str
    torch_version: str
    batch_size: int
    iterations: int  # profiled iterations
    notes: list[str] = field(default_factory=list)
    peak_note: str | None = None
    prof: object = field(default=None, repr=False, compare=False)  # the last torch profiler

    @property
    def main(self) -> FormProfile:
        return self.forms[self.form]

    def export_chrome_trace(self, path: str) -> None:
        """The main form's profiled iterations as Chrome trace JSON (Perfetto and
        chrome://tracing open it)."""
        self.prof.export_chrome_trace(path)

    def to_dict(self, with_forms: bool | None = None) -> dict:
        """The JSON contract: total_ms, peak_tflops, bandwidth_gbs, layers (name, kind,
        groups, calls, self_ms, macs, bytes, intensity, tflops, ...), and with several forms
        a `forms` object (form -> total_ms, op_calls, kernels, ...); peak_note where a layer
        comes out above the peak; `kinds`: per form, the rows summed by kind (breakdown)."""
        main = self.main
        data = {"name": main.name, "form": self.form, "total_ms": main.total_ms,
                "plain_ms": main.plain_ms, "overhead": main.overhead,
                "layers_ms": main.layers_ms, "other_ms": main.other_ms,
                "coverage": main.coverage, "op_calls": main.op_calls, "kernels": main.kernels,
                "macs": main.macs, "peak_tflops": self.peak_tflops,
                "bandwidth_gbs": self.bandwidth_gbs, "device_type": self.device_type,
                "device_name": self.device_name, "torch_version": self.torch_version,
                "batch_size": self.batch_size, "iterations": self.iterations,
                "settings": self.settings, "notes": self.notes,
                "layers": [layer.to_dict() for layer in main.layers]}
        data["kinds"] = {form: [k.to_dict() for k in breakdown.by_kind(p)]
                         for form, p in self.forms.items()}
        if with_forms or (with_forms is None and len(self.forms) > 1):
            data["forms"] = {form: {k: v for k, v in p.to_dict().items() if k != "layers"}
                             for form, p in self.forms.items()}
        if self.peak_note is not None:
            data["peak_note"] = self.peak_note
        return data


# -- hooks: a record_function scope around every module call ---------------------------------
# torch's C++ record function where this torch has it: the same profiler events as
# torch.profiler.record_function for a fraction of its cost per call (no Python object of its
# own per scope, no op dispatch to open and close it)
_record_function = getattr(torch._C._profiler, "_RecordFunctionFast",
                           torch.profiler.record_function)
class _Scopes:
    """Forward pre/post hooks on every module: a profiler scope per call, and on the first
    calls of each leaf, its shapes (for the analytic multiply-adds and bytes)."""

    def __init__(self, model: nn.Module, value_bytes: int):
        self.value_bytes = value_bytes
        self.open: list = []
        self.handles = []
        self.leaves: dict[str, nn.Module] = {}
        self.work: dict[str, list[tuple[int, int]]] = {}  # path -> [(macs, bytes)] per call
        self.recording = True
        for path, module in model.named_modules():
            if not list(module.children()):
                self.leaves[path] = module
            self.handles.append(module.register_forward_pre_hook(self._enter(path)))
            self.handles.append(module.register_forward_hook(self._exit(path, module)))

    def _enter(self, path: str):
        def hook(module, args):
            scope = _record_function(SCOPE + path)
            scope.__enter__()
            self.open.append(scope)
        return hook

    def _exit(self, path: str, module: nn.Module):
        leaf = not list(module.children())

        def hook(module, args, output):
            if leaf and self.recording and isinstance(output, torch.Tensor) and args:
                self.work.setdefault(path, []).append(
                    _work(module, args[0], output, self.value_bytes))
            self.open.pop().__exit__(None, None, None)
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _work(module: nn.Module, x: torch.Tensor, out: torch.Tensor,
          value_bytes: int) -> tuple[int, int]:
    """(multiply-adds, bytes moved) of one call, from the shapes."""
    weights = sum(p.numel() for p in module.parameters(recurse=False))
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        macs = out.numel() * (module.in_channels // module.groups) * kh * kw
    elif isinstance(module, nn.Linear):  # its bias once per output, as complexity counts
        macs = out.numel() * (module.in_features + (module.bias is not None))
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        macs = 2 * module.num_features * x.shape[0]  # builder.complexity's convention
    else:
        macs = 0
    return macs, (weights + x.numel() + out.numel()) * value_bytes


def _kernel_text(module: nn.Module) -> str:
    size = getattr(module, "kernel_size", None)
    if size is None:
        return ""
    size = (size, size) if isinstance(size, int) else size
    return "x".join(str(k) for k in size)


# -- reading the profiler's event tree --------------------------------------------------------
def _time_us(event, cuda: bool) -> float:
    if not cuda:
        return event.cpu_time_total
    return getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)


def _is_op(event) -> bool:
    return event.name.startswith("aten::")


@dataclass
class _Tally:
    """What one walk over the profiled steps found, summed over the iterations."""

    leaf_us: dict = field(default_factory=dict)  # path -> time
    leaf_calls: dict = field(default_factory=dict)
    own_us: dict = field(default_factory=dict)  # container path -> its own operators' time
    own_calls: dict = field(default_factory=dict)
    outside_us: float = 0.0  # operators under no module scope (training: the backward)
    step_us: float = 0.0
    op_calls: int = 0
    kernels: int = 0


_BACKWARD = ("autograd::engine::evaluate_function", "Optimizer.")


def _walk(event, scope: str | None, leaves, tally: _Tally, cuda: bool) -> None:
    """Attribute `event` and what is under it: a leaf scope's whole time to that leaf, an
    operator directly under a container scope to the container's own ops."""
    name = event.name
    if name.startswith(SCOPE):
        path = name[len(SCOPE):]
        if path in leaves:
            tally.leaf_us[path] = tally.leaf_us.get(path, 0.0) + _time_us(event, cuda)
            tally.leaf_calls[path] = tally.leaf_calls.get(path, 0) + 1
            _count_ops(event, tally, cuda)
            return
        scope = path
    elif scope is None and name.startswith(_BACKWARD):  # the autograd engine, the optimizer
        tally.outside_us += _time_us(event, cuda)
        _count_ops(event, tally, cuda)
        return
    elif _is_op(event):
        if scope is None:
            tally.outside_us += _time_us(event, cuda)
        else:
            tally.own_us[scope] = tally.own_us.get(scope, 0.0) + _time_us(event, cuda)
            tally.own_calls[scope] = tally.own_calls.get(scope, 0) + 1
        _count_ops(event, tally, cuda)
        return
    for child in event.cpu_children:
        _walk(child, scope, leaves, tally, cuda)


def _count_ops(event, tally: _Tally, cuda: bool) -> None:
    """Operators called from Python (aten ops with no aten op above them) and kernels (GPU
    kernels; on the CPU the innermost aten ops, which do the work) in `event`'s subtree."""
    stack = [(event, False)]
    while stack:
        e, under_op = stack.pop()
        op = _is_op(e)
        if op and not under_op:
            tally.op_calls += 1
        if cuda:
            tally.kernels += len(getattr(e, "kernels", ()) or ())
        elif op and not any(_is_op(c) for c in e.cpu_children):
            tally.kernels += 1
        stack.extend((c, under_op or op) for c in e.cpu_children)


def _tally(prof, leaves, cuda: bool) -> tuple[_Tally, int]:
    tally, steps = _Tally(), 0
    for event in prof.events():
        if event.name == STEP and event.cpu_parent is None:
            steps += 1
            tally.step_us += _time_us(event, cuda)
            for child in event.cpu_children:
                _walk(child, None, leaves, tally, cuda)
    return tally, steps


def _rows(tally: _Tally, steps: int, scopes: _Scopes, train: bool) -> list[LayerProfile]:
    """The layer rows of one form, per iteration, largest self time first."""
    total_ms = tally.step_us / 1e3 / steps
    rows = []

    def row(name, kind, kernel, groups, calls, us, macs, moved):
        ms = us / 1e3 / steps
        rows.append(LayerProfile(
            name=name, kind=kind, kernel_size=kernel, groups=groups, calls=calls, self_ms=ms,
            percent=100 * ms / total_ms if total_ms else 0.0, macs=macs, bytes=moved,
            intensity=2 * macs / moved if moved and macs else None,
            tflops=2 * macs / (ms / 1e3) / 1e12 if ms > 0 and macs else None))

    for path, us in tally.leaf_us.items():
        module = scopes.leaves[path]
        work = scopes.work.get(path, [])
        row(path, type(module).__name__, _kernel_text(module),
            getattr(module, "groups", None) if isinstance(module, nn.Conv2d) else None,
            round(tally.leaf_calls[path] / steps), us, sum(m for m, _ in work),
            sum(b for _, b in work))
    for path, us in tally.own_us.items():
        row(f"{path} (own ops)" if path else "(network's own ops)", "ops", "", None,
            round(tally.own_calls[path] / steps), us, 0, 0)
    if tally.outside_us:
        row("(backward and optimizer)" if train else "(outside modules)", "ops", "", None,
            0, tally.outside_us, 0, 0)
    return sorted(rows, key=lambda r: r.self_ms, reverse=True)


def _check_forms(forms) -> tuple[str, ...] | None:
    if forms is None:
        return None
    if isinstance(forms, str):
        forms = tuple(forms)
    try:
        forms = tuple(forms)
    except TypeError:
        forms = None
    if not forms or any(f not in FORMS for f in forms) or len(set(forms)) != len(forms):
        raise TimingSettingError(f"forms: {forms!r} is not allowed; expected None or some "
                                 f"of {', '.join(FORMS)}, each once")
    return forms


def placed(model: nn.Module, plan: _Plan, batch_size: int):
    """The model and a seeded random batch on the plan's device, channels_last if asked, and
    the generator, which goes on to draw a training step's labels."""
    generator = torch.Generator().manual_seed(plan.seed)
    batch = torch.randn(batch_size, *plan.input_shape, generator=generator).to(plan.device)
    model = model.to(plan.device)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    return model, batch, generator


def _plan(s: TimingSettings, spec: ResNeXtSpec) -> _Plan:
    dev = s.torch_device
    return _Plan(dev, s.dtype, s.channels_last,
                 dev.type == "cuda" and s.cudnn_benchmark is not False, s.compile, False,
                 s.mode, s.fast, s.warmup, s.iters, s.seed,
                 (spec.in_channels, spec.image_size, spec.image_size), spec.num_classes,
                 False, s.freeze)


def profile(spec: ResNeXtSpec, settings: TimingSettings | None = None, forms=None,
            progress: Callable[[float, str], None] | None = None,
            **overrides) -> ProfileResult:
    """Profile `spec` (random weights and BN statistics) on one random batch: for the spec's
    form, or for each of `forms` (say "abc"), converted from one model with the same weights.
    `settings` as time_model's (cuda_graphs refused; iters: the plain, unprofiled timing; at
    most MAX_PROFILED of them are profiled). Under the same guards (builder.guards.check,
    before anything is built) and the same GPU lock as timing.

    Raises TimingSettingError (a setting this machine or the profiler cannot honour) and
    builder.guards.ResourceLimitError (too big for this device)."""
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"profile expects a ResNeXtSpec, got {type(spec).__name__}")
    _check_progress(progress)
    settings = TimingSettings.of(settings, **overrides)
    if settings.cuda_graphs:
        raise TimingSettingError("cuda_graphs: a replayed CUDA graph hides the layers from "
                                 "the profiler; profile without it")
    if settings.input_shape is not None or settings.macs is not None:
        raise TimingSettingError("input_shape: the profile runs the spec's network; set "
                                 "image_size instead")
    order = _check_forms(forms)
    s = settings.resolved()
    if s.image_size is not None:
        spec = spec.replace(image_size=s.image_size)
    order = order or (spec.form,)
    dev = s.torch_device
    low = s.dtype in ("bf16", "fp16")
    guards.check(spec, s.batch_size, guards.Limits.for_device(dev.type,
                                                              device_total_memory(dev)),
                 mode="training" if s.mode == "train" else "inference",
                 dtype_bytes=2 if low else 4, models=len(order) + 1)
    run = _Run(progress, s.deadline_s)
    torch.manual_seed(s.seed)
    base = randomize_(build_model(spec.replace(form="c")), s.seed)
    plan = _plan(s, spec)
    main = spec.form if spec.form in order else order[0]
    results, prof = {}, None
    with _gpu_lock(dev):
        for index, form in enumerate(order):
            part = run.part(index, len(order) + 1, f"form ({form}): ")
            part.check()
            results[form], traced = _profile_one(part, convert(base, form), plan,
                                                 s.batch_size, 2 if low else 4)
            results[form].form, results[form].name = form, f"{spec.name} form ({form})"
            prof = traced if form == main else prof  # the trace of the main form only
        tail = run.part(len(order), len(order) + 1, "")
        tail.report(0, "measuring the matmul peak and the memory bandwidth")
        peak_tflops = peak.matmul_peak_tflops(dev, s.dtype)
        if any(r.tflops is not None and r.tflops > peak_tflops
               for p in results.values() for r in p.layers):
            peak_tflops = peak.refresh_peak(dev, s.dtype)  # measured under load? again
        bandwidth = peak.memory_bandwidth_gbs(dev)
        tail.report(1.0, "done")
    result = ProfileResult(
        spec=spec, form=main, forms=results, settings=s.to_dict(), peak_tflops=peak_tflops,
        bandwidth_gbs=bandwidth, device_type=dev.type, device_name=device_name(dev),
        torch_version=torch.__version__, batch_size=s.batch_size,
        iterations=min(s.iters, MAX_PROFILED), prof=prof)
    _notes(result, s)
    return result


def _profile_one(run: _Run, model: nn.Module, plan: _Plan, batch_size: int,
                 value_bytes: int) -> tuple[FormProfile, object]:
    """Warm up, time plainly, then profile a few iterations with the module scopes on."""
    dev, held = plan.device, {}
    cuda = dev.type == "cuda"
    try:
        with _COMPILE_LOCK if plan.compile else contextlib.nullcontext(), _on_device(dev):
            if plan.compile:
                _reset_compiler()
            _release(dev)
            run.report(0, "building the model and the batch")
            model, batch, generator = placed(model, plan, batch_size)
            with _numerics(dev, plan.dtype, plan.cudnn_benchmark):
                if plan.mode == "inference":
                    model.eval()
                    if plan.fast:
                        model, _ = _fold_checked(model, batch, plan)
                    step = _inference_step(model, batch, plan, held)
                else:
                    model.train()
                    step, _ = _train_step(model, batch, plan, generator, held)
                return _measure(run, model, step, plan, value_bytes, cuda)
    finally:
        held.clear()
        _release(dev, compiled=plan.compile)


def _measure(run: _Run, model, step, plan: _Plan, value_bytes: int,
             cuda: bool) -> tuple[FormProfile, object]:
    dev = plan.device
    count = min(plan.iters, MAX_PROFILED)
    units = plan.warmup + plan.iters + count + 1
    for i in range(plan.warmup):
        run.check()
        run.report(i / units, f"warm-up {i + 1}/{plan.warmup}")
        step()
    run.report(plan.warmup / units, f"plain timing, {plan.iters} iterations")
    before = _time_calls(step, dev, (plan.iters + 1) // 2, lambda i: run.check())
    scopes = _Scopes(model, value_bytes) if not plan.compile else None
    try:
        if scopes is not None:
            step()  # with the hooks: the shapes of every layer call, and the hooks warm
            scopes.recording = False
        _sync(dev)

        def scoped():
            with torch.profiler.record_function(STEP):
                step()

        activities = [torch.profiler.ProfilerActivity.CPU]
        if cuda:
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        run.report((plan.warmup + plan.iters) / units, f"profiling {count} iterations")
        with quiet.profile(activities=activities) as prof:
            wall = _time_calls(scoped, dev, count)
    finally:
        if scopes is not None:
            scopes.remove()
    after = _time_calls(step, dev, plan.iters // 2, lambda i: run.check())
    plain = before + after
    drift = (abs(statistics.median(before) - statistics.median(after)) / statistics.median(plain)
             if after else 0.0)
    run.report((units - 1) / units, "reading the profile")
    leaves = scopes.leaves if scopes is not None else {}
    tally, steps = _tally(prof, leaves, cuda)
    steps = max(steps, 1)
    rows = _rows(tally, steps, scopes, plan.mode == "train") if scopes is not None else []
    total_ms = tally.step_us / 1e3 / steps
    layers_ms = sum(r.self_ms for r in rows)
    return FormProfile(
        form="", name="",
        total_ms=total_ms, plain_ms=statistics.median(plain), plain_drift=drift,
        profiled_wall_ms=statistics.median(wall), op_calls=round(tally.op_calls / steps),
        kernels=round(tally.kernels / steps), layers=rows, layers_ms=layers_ms,
        other_ms=total_ms - layers_ms, macs=sum(r.macs for r in rows)), prof


def _notes(result: ProfileResult, s: TimingSettings) -> None:
    notes = result.notes
    if s.compile:
        notes.append("compile: Inductor fuses across module boundaries, so no layer can be "
                     "timed; totals and operator counts only")
    if s.mode == "train":
        notes.append("train: the layer rows are the forward pass; the backward and the SGD "
                     "step are one row, `(backward and optimizer)`"
                     + ("; on a GPU the backward runs on autograd's device thread, whose "
                        "kernels fall outside the step scope: read profiled_wall_ms"
                        if result.device_type == "cuda" else ""))
    notes.extend(_form_note(form, p, s) for form, p in result.forms.items())
    above = [(form, r) for form, p in result.forms.items() for r in p.layers
             if r.tflops is not None and r.tflops > result.peak_tflops]
    if above:
        form, worst = max(above, key=lambda item: item[1].tflops)
        result.peak_note = (
            f"{len(above)} layer(s) above the measured {result.peak_tflops:.3g} TFLOP/s matmul "
            f"peak (the most: form ({form}) {worst.name}, {worst.tflops:.3g} TFLOP/s): a "
            "convolution algorithm that does fewer multiplications than the direct count "
            "(Winograd, FFT: cuDNN picks them), a layer too short for the clock, or a peak "
            "measured while other work loaded the machine")


def _form_note(form: str, p: FormProfile, s: TimingSettings) -> str:
    """What the layers cover, what the rest is, and the profiler's overhead, in one line."""
    wide = p.coverage < 1 - SUM_BOUND and not s.compile and s.mode != "train"
    drifted = p.plain_drift > max(0.1, abs(p.overhead))
    return (f"form ({form}): layers cover {100 * p.coverage:.1f}% of the profiled step; the "
            f"other {p.other_ms:.3g} ms is the framework outside modules (Python between "
            "modules, the scope hooks, autocast/inference-mode entry)"
            + (f", more than {100 * SUM_BOUND:.0f}%: many short module calls, each with "
               "Python around it, a share that shrinks as the image grows" if wide else "")
            + f"; the profiler's overhead: {100 * p.overhead:+.0f}% "
            f"({p.profiled_wall_ms:.3g} ms profiled vs {p.plain_ms:.3g} ms plain)"
            + (f", within the noise: the plain time moved {100 * p.plain_drift:.0f}% between "
               "before and after the profiled iterations" if drifted else ""))
