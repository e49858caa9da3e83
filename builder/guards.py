"""Resource guards: how big a spec is, from the spec alone, and refusing it before it is built.

A spec that passes validation can still be far too big to build: C=4096, d=4096 and eight
stages of 128 blocks has about 1.8e18 parameters, and in form (a) about 2.9e7 modules (every
path is a module of its own, 7 per path). `estimate` counts parameters, activation memory,
modules and multiply-adds analytically, in about a millisecond, without building anything;
`check` compares them with `Limits` and raises `ResourceLimitError` (a SpecError) naming each
quantity that is over, with the estimate and the limit.

    >>> from builder import PRESETS
    >>> e = check(PRESETS["resnext50_32x4d"].replace(form="a"))
    >>> e.modules, e.params
    (3671, 25028904)

Activation memory: elements per image, times the batch and the bytes per value (max-pool
indices are int64 whatever the dtype). It follows how PyTorch's eager forward allocates, block
by block (builder/blocks.py):
  inference (no_grad): the peak of live tensors: the input image plus, at the busiest block,
      its input, its shortcut and its working set: in form (b) all C path outputs and their
      concatenation; in form (a) the running sum, one path's output and the new sum.
  training: the peak of a training forward: what autograd has kept so far (a conv keeps its
      input, a BN its input, an in-place ReLU its result; a sum or a concatenation nothing, so
      form (a) keeps the sum of its paths, not each path's last output; form (b) keeps the
      concatenation, which its last conv reads), plus the block's transient tensors.
tests/test_guards.py checks them on small specs of every block, form and stem: what autograd
keeps equals what torch.autograd.graph.saved_tensors_hooks sees; both peaks are within 10% of
torch.profiler's CPU peak (with torch 2.13, over 72 small specs: inference exactly, training
0% to -3.3%, the BN statistics left out).
Memory = parameter bytes (x3 in training: weights, gradients and one optimizer buffer, as SGD
with momentum keeps) + activation bytes. BN buffers and BN's saved per-channel statistics
are left out: 2 values per channel, well under 1% of the parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import registry
from .complexity import network_counts
from .network import StagePlan, block_geometry, stage_plans, stem_size
from .spec import ResNeXtSpec, SpecError

MODES = ("inference", "training")
DTYPE_BYTES = (1, 2, 4, 8)  # int8/fp8, fp16/bf16, fp32, fp64
INDEX_BYTES = 8  # max-pool indices are int64 whatever the dtype
GiB = 1 << 30

# Modules and memory per block follow builder.registry: each form's `modules` counts, and
# its `merge` ("dense", "sum", "concat") for what its forward keeps alive.
_NETWORK_MODULES = 7  # the ResNeXt, conv1, bn1, relu, maxpool (or Identity), avgpool, fc
_SHORTCUT_MODULES = 3
# Seconds to build one module, and to summarise one (torchinfo on the meta device, which
# builds too): build time grows with modules, not parameters. Measured on this project's
# 2-core CPU under load (benchmarks/RESULTS.md, "Build and summary time"); errs long.
BUILD_S_PER_MODULE = 1.1e-3
SUMMARY_S_PER_MODULE = 2.5e-3
WORKS = ("build", "summary")


@dataclass(frozen=True)
class Estimate:
    """What building and running a spec would take, counted from the spec alone."""

    params: int  # learnable parameters (exact: complexity.network_counts)
    param_bytes: int  # params x dtype_bytes
    activation_bytes: int  # activations for the batch, in `mode` (see the module docstring)
    modules: int  # len(list(model.modules())) (exact)
    macs: int  # multiply-adds of one forward pass over the whole batch (training: ~3x)
    batch_size: int = 1
    dtype_bytes: int = 4
    mode: str = "inference"
    models: int = 1  # copies of the model alive at once (the proof holds 2, time_forms 3)

    @property
    def build_seconds(self) -> float:
        """About how long build_model takes on the CPU (BUILD_S_PER_MODULE per module)."""
        return self.modules * BUILD_S_PER_MODULE

    @property
    def summary_seconds(self) -> float:
        """About how long builder.summary.summarize takes (SUMMARY_S_PER_MODULE per module)."""
        return self.modules * SUMMARY_S_PER_MODULE

    @property
    def memory_bytes(self) -> int:
        """Parameters (x3 in training: weights, gradients, momentum) of every copy of the
        model, plus the activations of one forward pass."""
        copies = 3 if self.mode == "training" else 1
        return self.models * copies * self.param_bytes + self.activation_bytes


@dataclass(frozen=True)
class Limits:
    """How big a network the server builds. The defaults are for the CPU: every preset in
    every form passes at batch 1, in inference and training (the biggest, resnext101_64x4d
    in form (a), has 14,939 modules; resnext101_32x8d has 88.8M params, 16.4 G MACs)."""

    max_params: int = 1_000_000_000  # 4 GB in fp32; 11x the biggest preset
    max_memory_bytes: int = 8 * GiB  # parameters (x3 in training) + activations
    max_modules: int = 30_000  # building time grows with modules (benchmarks/RESULTS.md)
    max_macs: int = 200 * 10**9  # one forward over the batch: seconds on 2 CPU cores
    max_batch_size: int = 256
    max_build_s: float = 20.0  # building (or summarising) on the CPU, estimated from modules

    @classmethod
    def for_device(cls, device: str = "cpu", memory_bytes: int | None = None) -> Limits:
        """Limits for "cpu" (the defaults) or "cuda": on a GPU the memory limit is 80% of
        `memory_bytes` (default 80 GB, an H100/A100 80GB), so resnext101_32x8d at batch 128
        in bf16 at 224 passes (1.3 GB estimated for inference, 16.4 GB to train), and so does
        resnext101_64x4d in form (a) at batch 128 in fp32 (32.7 GB to train); params, MACs
        and batch go higher. A "cpu" `memory_bytes` sets the memory limit to 80% of it."""
        kind = str(device).split(":")[0]
        if kind == "cpu":
            limits = cls()
            if memory_bytes is not None:
                limits = dataclasses.replace(limits, max_memory_bytes=int(memory_bytes) * 4 // 5)
            return limits
        if kind == "cuda":
            memory = 80 * 10**9 if memory_bytes is None else int(memory_bytes)
            return cls(max_params=4_000_000_000, max_memory_bytes=memory * 4 // 5,
                       max_modules=30_000, max_macs=50 * 10**12, max_batch_size=4096)
        raise SpecError("device", device, "expected 'cpu' or 'cuda'")


class ResourceLimitError(SpecError):
    """A spec (with its batch) whose estimate is over the limits. `over` lists each quantity
    that is: (name, estimated, limit); `field` is the first of them, `estimate` the Estimate."""

    def __init__(self, over: list[tuple[str, int, int]], messages: list[str],
                 estimate: Estimate):
        self.field, self.value, limit = over[0]
        self.allowed = f"at most {limit}"
        self.over = over
        self.estimate = estimate
        ValueError.__init__(self, "; ".join(messages) + ". Make the network smaller "
                            "(cardinality, width_per_group, depths, image_size) or the batch.")


# -- counting -------------------------------------------------------------------------------
def count_modules(spec: ResNeXtSpec) -> int:
    """len(list(build_model(spec).modules())), without building it."""
    per_path, per_block = registry.implementation(spec.block, spec.form).modules
    total = _NETWORK_MODULES + len(spec.depths)  # + one Sequential per stage
    for plan in stage_plans(spec):
        total += plan.depth * (per_block + per_path * spec.cardinality)
        if block_geometry(spec, plan, True).projection:
            total += _SHORTCUT_MODULES
    return total


@dataclass(frozen=True)
class BlockMemory:
    """One block's activations, in elements per image."""

    kept: int  # training: new tensors autograd keeps for backward
    transient: int  # training: tensors alive only while the block runs
    peak: int  # inference: live tensors at the block's busiest moment, its input included


def block_memory(spec: ResNeXtSpec, plan: StagePlan, first: bool) -> BlockMemory:
    """The first block of a stage (which may stride and project) or a later one. Derived
    from the forwards in blocks.py: a conv keeps its input, a BN its input, an in-place ReLU
    its result (the BN's output); a sum or a concatenation keeps nothing."""
    c, merge = spec.cardinality, registry.FORMS[spec.form].merge
    g = block_geometry(spec, plan, first)
    size = g.size_out
    shortcut = g.out_channels * size * size if g.projection else 0
    x = g.in_channels * g.size_in * g.size_in  # block input
    o = g.out_channels * size * size  # block output
    if spec.block == "bottleneck":
        w1, w2 = g.width * g.size_mid * g.size_mid, g.width * size * size  # where the 1x1 runs
        d1, d2 = w1 // c, w2 // c
        # conv1, bn1, conv2, bn2 outputs; the sum before the last BN (the 3rd conv's output
        # in (c)), the output; "concat" keeps the concatenation too
        kept = 2 * w1 + 2 * w2 + 2 * o + (w2 if merge == "concat" else 0)
        if merge == "dense":
            work = max(2 * w1, w1 + 2 * w2, w2 + 2 * o)
        elif merge == "sum":  # running sum + one path (+ its output and the new sum)
            work = o + max(2 * d1, d1 + 2 * d2, d2 + o, 2 * o)
        else:  # all path outputs, then their concatenation
            work = max(w2 - d2 + max(2 * d1, d1 + 2 * d2), 2 * w2, w2 + 2 * o)
    else:  # basic: both 3x3 run at the output size
        w = g.width * size * size
        d = w // c
        kept = 2 * w + 2 * o + (w if merge == "concat" else 0)
        if merge == "dense":
            work = max(2 * w, w + 2 * o)
        elif merge == "sum":
            work = o + max(2 * d, d + o, 2 * o)
        else:
            work = max(w + d, 2 * w, w + 2 * o)
    # the last BN's output and the shortcut's BN output are not kept. (a) adds its paths
    # with two more outputs alive (the previous partial sum, one path's output), but before
    # two of its kept outputs exist (the last BN's input, the block's output): the same peak
    transient = o + shortcut
    return BlockMemory(kept + shortcut,  # the projection's conv output
                       transient, x + shortcut + work)


def _stem_elements(spec: ResNeXtSpec) -> tuple[int, int, int]:
    """(input image, conv1 output, max-pool output or 0) per image."""
    size1, size2 = stem_size(spec)
    pooled = spec.stem_width * size2 * size2 if spec.stem == "imagenet" else 0
    return spec.in_channels * spec.image_size**2, spec.stem_width * size1 * size1, pooled


def saved_elements(spec: ResNeXtSpec) -> tuple[int, int]:
    """(values, int64 max-pool indices) per image that a training forward leaves for the
    backward pass: the input, what autograd keeps, and the logits. BN's per-channel saved
    statistics (2 per channel, per network, not per image) are left out."""
    image, stem, pooled = _stem_elements(spec)
    kept = image + 2 * stem + pooled  # input, conv1 and bn1 outputs, max-pool output
    for plan in stage_plans(spec):
        kept += block_memory(spec, plan, True).kept
        kept += (plan.depth - 1) * block_memory(spec, plan, False).kept
    head = spec.out_channels(len(spec.depths) - 1) + spec.num_classes  # fc input, logits
    return kept + head, pooled


def activation_elements(spec: ResNeXtSpec, mode: str = "inference") -> tuple[int, int]:
    """(values, int64 max-pool indices) per image at the peak of a forward pass in `mode`:
    "inference" (no_grad) or "training" (what is kept so far + the block's transients)."""
    image, stem, pooled = _stem_elements(spec)
    plans = stage_plans(spec)
    if mode == "inference":  # the caller holds the input; the rest comes and goes
        head = spec.out_channels(len(spec.depths) - 1) + spec.num_classes
        peak = max(2 * stem, stem + pooled, head)
        for plan in plans:
            peak = max(peak, block_memory(spec, plan, True).peak)
            if plan.depth > 1:
                peak = max(peak, block_memory(spec, plan, False).peak)
        return image + peak, 0
    kept = image + 2 * stem + pooled
    peak = kept
    for plan in plans:  # kept only grows, so a stage's peak is at its first or last block
        first = block_memory(spec, plan, True)
        peak = max(peak, kept + first.kept + first.transient)
        kept += first.kept
        if plan.depth > 1:
            other = block_memory(spec, plan, False)
            kept += (plan.depth - 1) * other.kept
            peak = max(peak, kept + other.transient)
    values, _ = saved_elements(spec)
    return max(peak, values), pooled


def estimate(spec: ResNeXtSpec, batch_size: int = 1, dtype_bytes: int = 4,
             mode: str = "inference", models: int = 1) -> Estimate:
    """Parameters, memory, modules and multiply-adds of `spec` at `batch_size`, with values
    of `dtype_bytes` bytes (4 for fp32, 2 for bf16), in `mode` ("inference" or "training"),
    with `models` copies of the model alive at once (one forward at a time).
    Pure arithmetic on the spec: under a millisecond, whatever the size."""
    if not isinstance(spec, ResNeXtSpec):
        raise SpecError("spec", type(spec).__name__, "expected a ResNeXtSpec")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError("batch_size", batch_size, "expected a whole number, 1 or more")
    if isinstance(dtype_bytes, bool) or not isinstance(dtype_bytes, int) or (
            dtype_bytes not in DTYPE_BYTES):
        raise SpecError("dtype_bytes", dtype_bytes,
                        f"expected one of {', '.join(map(str, DTYPE_BYTES))}")
    if not isinstance(mode, str) or mode not in MODES:
        raise SpecError("mode", mode, f"expected one of {', '.join(map(repr, MODES))}")
    if isinstance(models, bool) or not isinstance(models, int) or not 1 <= models <= 8:
        raise SpecError("models", models, "expected a whole number from 1 to 8")
    counts = network_counts(spec)
    values, indices = activation_elements(spec, mode)
    return Estimate(
        params=counts.params,
        param_bytes=counts.params * dtype_bytes,
        activation_bytes=batch_size * (values * dtype_bytes + indices * INDEX_BYTES),
        modules=count_modules(spec),
        macs=batch_size * counts.macs,
        batch_size=batch_size, dtype_bytes=dtype_bytes, mode=mode, models=models)


# -- checking -------------------------------------------------------------------------------
def _sci(n: int, digits: int = 1) -> str:
    """9_100_000_000 -> '9.1e9'; small numbers as they are."""
    if n < 10_000:
        return str(n)
    text = f"{n:.{digits}e}"  # '9.1e+09'
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


def _apart(show, estimated: int, limit: int, unit: str = "") -> tuple[str, str]:
    """Both numbers with enough digits to tell them apart: ('2.01e11', '2.00e11')."""
    for digits in range(1, 6):
        pair = show(estimated, digits), show(limit, digits)
        if pair[0] != pair[1]:
            return pair
    return f"{estimated:,}{unit}", f"{limit:,}{unit}"


def _bytes(n: int, digits: int = 1) -> str:
    if n >= 1024 * GiB:
        return f"{_sci(n, digits)} bytes"
    if n >= GiB:
        return f"{n / GiB:.{digits}f} GiB"
    return f"{n / 2**20:.{digits}f} MiB"


def check(spec: ResNeXtSpec, batch_size: int = 1, limits: Limits | None = None,
          mode: str = "inference", dtype_bytes: int = 4, models: int = 1,
          work: str = "build") -> Estimate:
    """The estimate of `spec`, or ResourceLimitError (a SpecError) when a quantity is over
    `limits` (default: Limits(), the CPU's). Call it before building. `models`: copies of
    the model held at once (builder.proof: 2 in float64; timing.time_forms: 3). `work`:
    "build" or "summary", whose estimated seconds (Estimate.build_seconds, summary_seconds)
    must be within limits.max_build_s."""
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, not {type(limits).__name__}")
    if not isinstance(work, str) or work not in WORKS:
        raise SpecError("work", work, f"expected one of {', '.join(map(repr, WORKS))}")
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and (
            batch_size > limits.max_batch_size):
        raise SpecError("batch_size", batch_size,
                        f"expected a whole number from 1 to {limits.max_batch_size}")
    e = estimate(spec, batch_size, dtype_bytes, mode, models)
    over: list[tuple[str, int, int]] = []
    messages: list[str] = []
    if e.params > limits.max_params:
        over.append(("params", e.params, limits.max_params))
        messages.append("params: {} estimated, the limit is {}".format(
            *_apart(_sci, e.params, limits.max_params)))
    if e.memory_bytes > limits.max_memory_bytes:
        over.append(("memory", e.memory_bytes, limits.max_memory_bytes))
        memory, limit = _apart(_bytes, e.memory_bytes, limits.max_memory_bytes,
                               " bytes")
        messages.append(
            f"memory: {memory} estimated ({mode}, batch {batch_size}, "
            f"{dtype_bytes}-byte values: parameters {_bytes(e.param_bytes)}"
            f"{' x3' if mode == 'training' else ''}"
            f"{f' x{models} copies of the model' if models > 1 else ''}, activations "
            f"{_bytes(e.activation_bytes)}), the limit is {limit}")
    if e.modules > limits.max_modules:
        over.append(("modules", e.modules, limits.max_modules))
        why = ""
        per_path = registry.implementation(spec.block, spec.form).modules[0]
        if per_path:
            why = (f" (form ({spec.form}) builds {per_path} modules for each of the "
                   f"C={spec.cardinality} paths of {sum(spec.depths)} blocks; form (c) "
                   f"builds the same network with {_sci(count_modules(spec.replace(form='c')))})")
        estimated, limit = _apart(_sci, e.modules, limits.max_modules)
        messages.append(f"modules: {estimated} estimated{why}, the limit is {limit}")
    seconds = e.build_seconds if work == "build" else e.summary_seconds
    if seconds > limits.max_build_s and e.modules <= limits.max_modules:  # else said above
        over.append((f"{work}_s", round(seconds, 1), limits.max_build_s))
        verb = "build" if work == "build" else "summarise"
        messages.append(f"{work}_s: about {seconds:.1f} s estimated to {verb} {e.modules:,} "
                        f"modules, the limit is {limits.max_build_s:g} s")
    if e.macs > limits.max_macs:
        over.append(("macs", e.macs, limits.max_macs))
        estimated, limit = _apart(_sci, e.macs, limits.max_macs)
        messages.append(f"macs: {estimated} multiply-adds estimated for a batch of {batch_size} "
                        f"at {spec.image_size}x{spec.image_size}, the limit is {limit}")
    if over:
        raise ResourceLimitError(over, messages, e)
    return e
