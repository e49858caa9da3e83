"""The attempt engine: one configuration built, warmed up and timed, with progress and the
time limit (_Run), torch.compile, CUDA graphs, BN folding checked, and out-of-memory handling
(a failed attempt gives its memory back; an OOM names a batch size that fits)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..fold import fold_bn, relative_error
from . import contention
from .clock import _time_calls, stopwatch
from .devices import _autocast, _numerics, _on_device, _release, _reset_compiler, _sync, device_name
from .errors import TimingError
from .settings import FOLD_TOLERANCE


# -- progress and the time limit ----------------------------------------------------------------
class _Run:
    """The progress reports and the time limit of one time_model, time_forms or prove call.
    A part of it (one form of time_forms) reports into its share [low, high] of the whole
    and shares its clock, its limit and the list of what has finished."""

    def __init__(self, progress: Callable[[float, str], None] | None = None,
                 deadline_s: float | None = None):
        self.progress = progress
        self.deadline_s = deadline_s
        self.elapsed = stopwatch()
        self.low, self.high, self.prefix = 0.0, 1.0, ""
        self.where = "the start"
        self.finished: list[str] = []  # shared by the parts
        self._last = [0.0]  # shared: the fraction reported never goes back

    def part(self, index: int, count: int, prefix: str) -> _Run:
        """Part `index` of `count` equal parts; its texts start with `prefix`."""
        child = copy.copy(self)
        span = self.high - self.low
        child.low = self.low + span * index / count
        child.high = self.high if index + 1 == count else self.low + span * (index + 1) / count
        child.prefix = self.prefix + prefix
        return child

    def report(self, fraction: float, text: str) -> None:
        """`fraction` (0 to 1) of this part done; `text` says what runs now."""
        self.where = self.prefix + text
        value = (self.high if fraction >= 1
                 else self.low + (self.high - self.low) * max(float(fraction), 0.0))
        value = max(value, self._last[0])
        self._last[0] = value
        if self.progress is not None:
            self.progress(value, self.where)

    def check(self) -> None:
        """TimingError once the time limit is exceeded, naming it and how far the run got."""
        if self.deadline_s is None:
            return
        elapsed = self.elapsed()
        if elapsed > self.deadline_s:
            done = (f"; finished before it: {', '.join(self.finished)}" if self.finished
                    else "")
            raise TimingError(f"deadline_s: the time limit of {self.deadline_s:g} s was "
                              f"exceeded ({elapsed:.3g} s elapsed) at {self.where}{done}; "
                              "not timed further")


# -- one attempt -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    device: torch.device
    dtype: str
    channels_last: bool
    cudnn_benchmark: bool
    compile: bool
    cuda_graphs: bool
    mode: str
    fast: bool
    warmup: int
    iters: int
    seed: int
    input_shape: tuple[int, ...]
    num_classes: int | None
    cross_check: bool
    freeze: bool = False  # torch.compile with Inductor's freezing (inference only)

    @property
    def compile_mode(self) -> str | None:
        if not self.compile:
            return None
        return "reduce-overhead" if self.cuda_graphs else "default"

    @property
    def units(self) -> int:
        """Steps of progress: warm-up and timed iterations, the GPU's Timer cross-check, and
        the end (the matmul peak, the summary)."""
        gpu_check = self.cross_check and self.device.type == "cuda"
        return self.warmup + self.iters + int(gpu_check) + 1


# Compiled attempts run one at a time in a process: torch.compiler.reset() clears state that
# every thread shares (compiled code, CUDA-graph trees and their memory pools).
_COMPILE_LOCK = threading.RLock()


def _loss(output: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy for a classifier's (N, classes) output; the mean square otherwise."""
    if labels is not None and output.dim() == 2:
        return nn.functional.cross_entropy(output.float(), labels)
    return output.float().square().mean()


def _capture(fn: Callable[[], object], device: torch.device, held: dict,
             before: Callable[[], None] | None = None) -> Callable[[], None]:
    """Record `fn` in a CUDA graph, as PyTorch's CUDA-graphs recipe does (CUDA semantics notes,
    "whole network capture"): three warm-up calls on a side stream, then the capture.
    `before` runs before each warm-up call and right before the capture: for a training step,
    optimizer.zero_grad(set_to_none=True), so that the captured backward allocates the
    gradients from the graph's private pool and every replay writes them afresh (with
    gradients present at capture time, each replay would add to them). The graph goes into
    `held`; the returned step replays it. Call it inside _on_device(device)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            if before is not None:
                before()
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    if before is not None:
        before()
    held["graph"] = torch.cuda.CUDAGraph()
    with torch.cuda.graph(held["graph"]):
        fn()
    return lambda: held["graph"].replay()


def _mark_step(plan: _Plan) -> Callable[[], None]:
    """torch.compile with CUDA graphs (cudagraph trees): mark where each step begins, as its
    documentation asks of loops that call the compiled model again and again."""
    if plan.compile and plan.cuda_graphs:
        return torch.compiler.cudagraph_mark_step_begin
    return lambda: None


# The steps below reach the model, the batch, the optimizer and the graph through `held`, a
# dict that the attempt empties when it ends, however it ends: a traceback keeps the frames
# of a failed step, and with them the step's function and its closure, alive.
def _inference_step(model: nn.Module, batch: torch.Tensor, plan: _Plan,
                    held: dict | None = None):
    held = {} if held is None else held
    autocast = _autocast(plan.device, plan.dtype, cache_enabled=not plan.cuda_graphs)
    held["batch"] = batch
    held["forward"] = torch.compile(model, mode=plan.compile_mode) if plan.compile else model
    mark = _mark_step(plan)

    def step():
        mark()
        with torch.inference_mode(), autocast():
            held["forward"](held["batch"])

    if plan.cuda_graphs and not plan.compile:
        return _capture(step, plan.device, held)
    return step


def _train_step(model: nn.Module, batch: torch.Tensor, plan: _Plan,
                generator: torch.Generator, held: dict | None = None):
    """(step, labels): one full training step (zero the gradients, forward, loss, backward,
    SGD update) on the batch and random labels drawn from `generator`."""
    held = {} if held is None else held
    held["batch"] = batch
    held["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    held["scaler"] = torch.amp.GradScaler(plan.device.type) if plan.dtype == "fp16" else None
    held["labels"] = None
    if plan.num_classes:
        held["labels"] = torch.randint(0, plan.num_classes, (batch.shape[0],),
                                       generator=generator).to(plan.device)
    autocast = _autocast(plan.device, plan.dtype, cache_enabled=not plan.cuda_graphs)
    held["forward"] = torch.compile(model, mode=plan.compile_mode) if plan.compile else model
    mark = _mark_step(plan)

    def forward_backward_update():
        with autocast():
            loss = _loss(held["forward"](held["batch"]), held["labels"])
        optimizer, scaler = held["optimizer"], held["scaler"]
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def zero_grad():
        held["optimizer"].zero_grad(set_to_none=True)

    if plan.cuda_graphs and not plan.compile:  # whole-step capture (no GradScaler: refused)
        return (_capture(forward_backward_update, plan.device, held, before=zero_grad),
                held["labels"])

    def step():
        mark()
        zero_grad()
        forward_backward_update()

    return step, held["labels"]


def _fold_checked(model: nn.Module, batch: torch.Tensor, plan: _Plan):
    folded = fold_bn(model)
    autocast = _autocast(plan.device, plan.dtype)
    with torch.inference_mode(), autocast():
        error = relative_error(model(batch), folded(batch))
    tolerance = FOLD_TOLERANCE[plan.dtype]
    if not error <= tolerance:
        raise TimingError(f"fast: the BN-folded model differs from the original by {error:.2e} "
                          f"(max |difference| / max |output|), above the {plan.dtype} "
                          f"tolerance {tolerance:.0e}; not timed")
    return folded, error


def _cudagraph_skips() -> int:
    """How often torch.compile has declined to use CUDA graphs in this process."""
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])


def _attempt(pristine: nn.Module, plan: _Plan, batch_size: int, probe: bool = False,
             run: _Run | None = None) -> dict:
    """Build, warm up and time one configuration. `probe`: one eager step, nothing timed."""
    with _on_device(plan.device), _freezing(plan.freeze and plan.compile and not probe):
        return _attempt_here(pristine, plan, batch_size, probe, run or _Run())


def _freezing(on: bool):
    """Inductor's freezing for the compiles inside: the weights become constants, so that
    BN folds into the convolutions and, on the CPU, oneDNN prepacks the convolution weights
    (torch._inductor.config.freezing; it holds for inference only). A process-wide setting:
    compiled attempts run one at a time (_COMPILE_LOCK)."""
    if not on:
        return contextlib.nullcontext()
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


def _attempt_here(pristine: nn.Module, plan: _Plan, batch_size: int, probe: bool,
                  run: _Run) -> dict:
    held: dict = {}  # what the steps use; emptied however the attempt ends
    try:
        return _attempt_held(pristine, plan, batch_size, probe, run, held)
    finally:
        held.clear()


def _attempt_held(pristine: nn.Module, plan: _Plan, batch_size: int, probe: bool, run: _Run,
                  held: dict) -> dict:
    dev = plan.device
    _release(dev)
    run.report(0, "building the model and the batch")
    model = copy.deepcopy(pristine).to(dev)
    generator = torch.Generator().manual_seed(plan.seed)
    batch = torch.randn(batch_size, *plan.input_shape, generator=generator).to(dev)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = batch.contiguous(memory_format=torch.channels_last)
    if probe:
        plan = dataclasses.replace(plan, compile=False, cuda_graphs=False, fast=False)
    out = {"fold_rel_error": None, "check_median_ms": None, "peak_memory_bytes": None,
           "cudagraph_skips": None, "contention": None, "compile_s": None}
    skips = _cudagraph_skips() if plan.compile and plan.cuda_graphs else None
    units = plan.units
    with _numerics(dev, plan.dtype, plan.cudnn_benchmark):
        if plan.mode == "inference":
            model.eval()
            if plan.fast:
                run.report(0, "checking the BN-folded model against the original")
                model, out["fold_rel_error"] = _fold_checked(model, batch, plan)
            if plan.cuda_graphs and not plan.compile:
                run.report(0, "capturing a CUDA graph (3 warm-up calls on a side stream)")
            step = _inference_step(model, batch, plan, held)
        else:
            model.train()
            if plan.cuda_graphs and not plan.compile:
                run.report(0, "capturing a CUDA graph (3 warm-up steps on a side stream)")
            step, _ = _train_step(model, batch, plan, generator, held)
        if probe:
            step()
            _sync(dev)
            return out
        if dev.type == "cuda":  # what is held from here on (a captured graph's pool too)
            torch.cuda.reset_peak_memory_stats(dev)
        for i in range(plan.warmup):
            run.check()
            compiling = plan.compile and i == 0
            run.report(i / units, f"warm-up {i + 1}/{plan.warmup}"
                       + (" (torch.compile compiles)" if compiling else ""))
            if not compiling:
                step()
                continue
            try:  # the first call compiles: say so if that is what fails
                elapsed = stopwatch()
                step()
                _sync(dev)
                out["compile_s"] = elapsed()  # compiling, then one call: not in the times
            except Exception as exc:
                if _is_oom(exc):
                    raise
                raise TimingError(f"compile: torch.compile failed: {type(exc).__name__}: "
                                  f"{_first_line(exc)}") from exc

        def between(i: int) -> None:  # after timed iteration i (0-based), outside its span
            run.check()
            if i + 1 < plan.iters:
                run.report((plan.warmup + i + 1) / units, f"iteration {i + 2}/{plan.iters}")

        run.check()
        run.report(plan.warmup / units, f"iteration 1/{plan.iters}")
        before = contention.snapshot()
        if plan.cross_check and dev.type == "cpu":
            out["times_ms"], out["check_median_ms"] = _interleaved(step, dev, plan.iters,
                                                                   between)
        else:
            out["times_ms"] = _time_calls(step, dev, plan.iters, between)
        out["contention"] = contention.between(before, contention.snapshot())
        if dev.type == "cuda":
            out["peak_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
        if plan.cross_check and dev.type == "cuda":
            run.report((plan.warmup + plan.iters) / units,
                       "cross-check with torch.utils.benchmark.Timer")
            out["check_median_ms"] = _timer(step).blocked_autorange(
                min_run_time=max(0.2, sum(out["times_ms"]) / 1e3)).median * 1e3
            run.check()
    if skips is not None:
        out["cudagraph_skips"] = _cudagraph_skips() - skips
    return out


def _timer(step: Callable[[], None]):
    """torch.utils.benchmark.Timer on the same step, with torch's current thread count (its
    default is one thread). It synchronises the current GPU itself: run it inside
    _on_device."""
    from torch.utils.benchmark import Timer

    return Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())


def _interleaved(step: Callable[[], None], device: torch.device, iters: int,
                 between: Callable[[int], None] | None = None) -> tuple[list[float], float]:
    """Our `iters` timed iterations, interleaved with torch.utils.benchmark.Timer's blocks
    (one of ours after each of its blocks, through its callback), so that both measurements
    see the same moments of a shared machine. Returns (our times in ms, Timer's median ms)."""
    ours: list[float] = []

    def one_of_ours() -> None:
        ours.extend(_time_calls(step, device, 1))
        if between is not None:
            between(len(ours) - 1)

    one_of_ours()
    measurement = _timer(step).blocked_autorange(
        callback=lambda number, seconds: one_of_ours() if len(ours) < iters else None,
        min_run_time=max(0.2, (iters - 1) * ours[0] / 1e3))
    while len(ours) < iters:
        one_of_ours()
    return ours[:iters], measurement.median * 1e3


_OOM_TEXTS = ("out of memory", "can't allocate memory", "alloc_failed")


def _oom_in(exc: BaseException | None) -> BaseException | None:
    """The out-of-memory error in `exc`'s chain (its cause or context, and theirs), or None.
    The chain matters for CUDA-graph capture: an allocation that fails inside
    `torch.cuda.graph(...)` is followed by the capture's own error on leaving it
    (capture_end: the capture was invalidated), with the OOM as its context."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
            return exc
        if isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in _OOM_TEXTS):
            return exc  # "CUDA error: out of memory", CUBLAS/CUDNN_STATUS_ALLOC_FAILED, CPU
        exc = exc.__cause__ or exc.__context__
    return None


def _is_oom(exc: BaseException) -> bool:
    return _oom_in(exc) is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _drop_frames(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in `exc`'s traceback (the failed
    attempt's model, batch, graph...), so that its memory can be given back before `exc`
    propagates; the traceback's lines stay."""
    traceback.clear_frames(exc.__traceback__)


def _suggest_batch(pristine: nn.Module, plan: _Plan, failed: int) -> int | None:
    """The largest of failed/2, failed/4, ..., 1 for which one eager step runs."""
    size = failed // 2
    while size >= 1:
        fits = True
        try:
            _attempt(pristine, plan, size, probe=True)
        except BaseException as exc:
            if not _is_oom(exc):
                _drop_frames(exc)
                _release(plan.device)
                raise
            fits = False
        _release(plan.device)  # outside the except block: the traceback is gone
        if fits:
            return size
        size //= 2
    return None



def _attempt_or_advice(run: _Run, pristine: nn.Module, plan: _Plan, batch_size: int) -> dict:
    """The attempt, holding the compile lock when compiling; a TimingError on out of memory
    that names a batch size that fits. Call it holding the GPU's lock."""
    dev, compile = plan.device, plan.compile
    failure = out_of_memory = None
    with _COMPILE_LOCK if compile else contextlib.nullcontext():
        if compile:
            _reset_compiler()  # compile afresh: no stale code, no recompile limit reached
        try:
            raw = _attempt(pristine, plan, batch_size, run=run)
        except TimingError as exc:
            failure = str(exc)
        except BaseException as exc:
            if not _is_oom(exc):  # anything else propagates, after the memory is given back
                _drop_frames(exc)
                _release(dev, compiled=compile)
                raise
            out_of_memory = _first_line(_oom_in(exc))
        _release(dev, compiled=compile)  # out of the except blocks: the frames are freed
    if failure is not None:
        raise TimingError(failure)
    if out_of_memory is not None:
        fits = _suggest_batch(pristine, plan, batch_size)
        tried = f"batch size {fits} fits (one eager {plan.mode} step tried); use it or smaller"
        advice = tried if fits else "not even batch size 1 fits; try a smaller image or network"
        raise TimingError(f"out of memory at batch size {batch_size} on "
                          f"{device_name(dev)} ({out_of_memory}); {advice}")
    return raw
