"""The classroom proof that forms (a), (b), (c) are one function, quick enough to run live.

`prove` takes the spec's weights (random, with random BN statistics), converts them into the
other two forms (`builder.convert`), runs one random batch through all three in float64 and
float32, and reports max |difference| against the spec's own form, next to the bound within
which they count as equal. Unlike `check_equivalence` (the test suite's, which converts afresh
for every pair), each form is converted once per dtype and mode, so the whole network costs
three forward passes per dtype: ResNeXt-29 (8x64d) at 32x32, or one block of ResNeXt-50, in a
few seconds on two CPU cores. Then `builder.timing` times the three forms (briefly): equal in
math, not in speed.

`scope="block"` proves one later block of a stage (stride 1, in = out channels: the paper's
Fig. 3 block for stage 0 of ResNeXt-50); `scope="network"` the whole network.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch

from .complexity import block_counts, network_counts
from .convert import BOUND_FLOAT32_REL, BOUND_FLOAT64_ABS, convert, randomize_
from .network import build_model, stage_plans
from .spec import ResNeXtSpec, SpecError

SCOPES = ("network", "block")
FORMS = ("a", "b", "c")
DTYPES = (torch.float64, torch.float32)
# time_forms settings for the contrast: short, the point is the ratio between forms
CONTRAST = {"device": "cpu", "warmup": 1, "iters": 3}
# The page asks before a run estimated to take longer than this. The estimate errs high
# (builder.timing's form-(a) efficiency is for C=32: ResNeXt-29 (8x64d) is estimated at ~28 s
# and takes ~7 s on 2 cores), so the classroom specs run at once and ResNeXt-50 asks first.
ASK_ABOVE_S = 45.0


@dataclass
class Proof:
    spec: ResNeXtSpec
    scope: str
    stage: int
    batch_size: int
    rows: list[dict] = field(default_factory=list)  # form, dtype, mode, max_abs_diff, ...
    timings: list = field(default_factory=list)  # TimingResult of forms (a), (b), (c)
    seconds: float = 0.0  # wall time of the proof (forward passes and conversion)

    @property
    def ok(self) -> bool:
        return all(row["ok"] for row in self.rows)


def _check(spec: ResNeXtSpec, scope: str, stage: int, batch_size: int) -> None:
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"prove expects a ResNeXtSpec, got {type(spec).__name__}")
    if scope not in SCOPES:
        raise SpecError("scope", scope, "expected 'network' or 'block'")
    n = len(spec.depths)
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < n:
        raise SpecError("stage", stage, f"expected a whole number from 0 to {n - 1}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not (
            1 <= batch_size <= 64):
        raise SpecError("batch_size", batch_size, "expected a whole number from 1 to 64")


def _row(reference_form, form, dtype, mode, expected, got) -> dict:
    diff = (expected - got).abs().max().item()
    scale = expected.abs().max().item() or 1.0
    rel = diff / scale
    if dtype == torch.float64:
        bound, ok, kind = BOUND_FLOAT64_ABS, diff <= BOUND_FLOAT64_ABS, "abs"
    else:
        bound, ok, kind = BOUND_FLOAT32_REL, rel <= BOUND_FLOAT32_REL, "rel"
    return {"from": reference_form, "form": form, "dtype": str(dtype).split(".")[-1],
            "mode": mode, "max_abs_diff": diff, "rel_error": rel, "bound": bound,
            "bound_kind": kind, "ok": ok}


def _network_rows(spec, batch_size, seed, modes) -> list[dict]:
    torch.manual_seed(seed)
    source = randomize_(build_model(spec), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    batch = torch.randn(batch_size, spec.in_channels, spec.image_size, spec.image_size,
                        generator=generator, dtype=torch.float64)
    rows = []
    for dtype in DTYPES:
        base = source.to(dtype)
        for mode in modes:
            # fresh conversions per mode: a train-mode pass updates the running statistics
            outputs = {}
            for form in FORMS:
                model = convert(base, form).train(mode == "train")
                with torch.no_grad():
                    outputs[form] = model(batch.to(dtype))
                del model
            rows += [_row(spec.form, form, dtype, mode, outputs[spec.form], outputs[form])
                     for form in FORMS if form != spec.form]
    return rows


def _block_rows(spec, stage, batch_size, seed, modes) -> list[dict]:
    from .timing import one_block  # the same weights in forms (a), (b), (c)

    modules, shape, _ = one_block(spec, stage, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    batch = torch.randn(batch_size, *shape, generator=generator, dtype=torch.float64)
    rows = []
    for dtype in DTYPES:
        for mode in modes:
            outputs = {}
            for form in FORMS:
                block = copy.deepcopy(modules[form]).to(dtype).train(mode == "train")
                with torch.no_grad():
                    outputs[form] = block(batch.to(dtype))
            rows += [_row(spec.form, form, dtype, mode, outputs[spec.form], outputs[form])
                     for form in FORMS if form != spec.form]
    return rows


def prove(spec: ResNeXtSpec, scope: str = "network", stage: int = 0, batch_size: int = 1,
          seed: int = 0, modes=("eval",), time_forms: bool = True) -> Proof:
    """Run the proof (and, with `time_forms`, the timing contrast) on the CPU.

    Args:
        spec: the network; its form is the reference the other two are compared with.
        scope: "network" (the whole model) or "block" (one later block of `stage`).
        stage: 0-based stage for scope "block".
        batch_size: images (or block inputs) in the random batch. Default 1.
        seed: seeds the weights, the BN statistics and the batch.
        modes: "eval" and/or "train" (train-mode BN uses the batch's statistics).
        time_forms: also time the three forms with builder.timing (a few iterations).
    """
    _check(spec, scope, stage, batch_size)
    for mode in modes:
        if mode not in ("eval", "train"):
            raise SpecError("mode", mode, "expected 'eval' or 'train'")
    start = time.perf_counter()
    rows = (_network_rows(spec, batch_size, seed, modes) if scope == "network"
            else _block_rows(spec, stage, batch_size, seed, modes))
    proof = Proof(spec, scope, stage, batch_size, rows, seconds=time.perf_counter() - start)
    if time_forms:
        from .timing import time_forms as timed

        proof.timings = timed(spec, block=stage if scope == "block" else None,
                              batch_size=batch_size, **CONTRAST)
    return proof


def estimate_seconds(spec: ResNeXtSpec, scope: str = "network", stage: int = 0,
                     batch_size: int = 1, modes=("eval",), time_forms: bool = True) -> float:
    """A rough estimate of `prove`'s run time on the CPU, before running it (from
    builder.timing.estimate_seconds: analytic FLOPs and module calls)."""
    from .timing import estimate_seconds as timing_estimate

    _check(spec, scope, stage, batch_size)
    # per form: one float64 pass (about two float32 passes) and one float32 pass per mode,
    # plus the contrast's warm-up and timed iterations
    passes = 3 * len(modes) + (CONTRAST["warmup"] + CONTRAST["iters"] if time_forms else 0)
    seconds = timing_estimate(spec, batch_size, "cpu", iters=passes, warmup=0, forms=True)
    if scope == "block":
        plan = stage_plans(spec)[stage]
        share = block_counts(spec, plan, first=False).macs / network_counts(spec).macs
        seconds *= share
    return seconds
