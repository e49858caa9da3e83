"""`python -m builder time`: its arguments (with timm's benchmark.py names as aliases) and its
run, which builds one TimingSettings from them (validated once: a bad setting exits 2).

timm's names accepted: -b/--batch-size (= --batch), --img-size (= --image-size),
--precision (= --dtype), --num-warm-iter (= --warmup), --num-bench-iter (= --iters).
--precision also takes timm's spellings: float32 -> fp32, tf32, amp -> fp16, amp_bfloat16
(or amp_bf16) -> bf16, both autocast with fp32 weights as in timm; and float16 -> fp16,
bfloat16 -> bf16, which in timm cast the whole model to half precision but here mean the
same autocast as fp16 and bf16 (builder has no pure half-precision mode).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

HELP = "time on a random batch: median ms, img/s, TFLOP/s and percent of the matmul peak"
DTYPE_CHOICES = ("fp32", "tf32", "bf16", "fp16")
# timm's --precision spellings -> ours
TIMM_PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "amp": "fp16",
                  "amp_bfloat16": "bf16", "amp_bf16": "bf16"}
_FLAGS = (("--compile", "torch.compile the model"),
          ("--channels-last", "NHWC memory format for model and batch"),
          ("--cuda-graphs", "replay each step as a CUDA graph (GPU)"),
          ("--freeze", "with --compile, inference: Inductor's freezing (weights "
                       "as constants: BN folded, CPU weights prepacked)"),
          ("--fast", "inference with BN folded into the convolutions"),
          ("--no-cudnn-benchmark", "do not let cuDNN time its algorithms"),
          ("--forms", "time forms (a), (b), (c) side by side"),
          ("--cross-check", "also time with torch.utils.benchmark.Timer"),
          ("--json", "print the results as JSON"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import ITERS_RANGE, SEED_RANGE, TIME_BATCH_RANGE, WARMUP_RANGE, whole_number

    p.add_argument("--batch", type=whole_number("--batch", *TIME_BATCH_RANGE), default=8,
                   help="images per iteration (default 8)")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda",
                   help="auto: CUDA when available, else the CPU")
    p.add_argument("--dtype", default="fp32", choices=DTYPE_CHOICES,
                   help="fp32 (TF32 off), tf32 (GPU), bf16 or fp16 (autocast)")
    p.add_argument("--mode", default="inference", choices=("inference", "train"),
                   help="train: forward, backward and an SGD step")
    for flag, text in _FLAGS:
        p.add_argument(flag, action="store_true", help=text)
    p.add_argument("--one-block", type=int, metavar="STAGE",
                   help="time one block of this stage (0 = conv2) instead of the network")
    p.add_argument("--warmup", type=whole_number("--warmup", *WARMUP_RANGE),
                   help="untimed iterations (default: CPU 2, GPU 10)")
    p.add_argument("--iters", type=whole_number("--iters", *ITERS_RANGE),
                   help="timed iterations (default: CPU 10, GPU 50)")
    p.add_argument("--seed", type=whole_number("--seed", *SEED_RANGE), default=0,
                   help="seeds the weights and the batch (default 0)")
    p.add_argument("--csv", metavar="FILE", help="also write the results here as CSV")
    timm = p.add_argument_group("timm's benchmark.py names (aliases)")
    alias = {"default": argparse.SUPPRESS}  # an alias given overrides; absent, it does not
    timm.add_argument("-b", "--batch-size", dest="batch", **alias,
                      type=whole_number("--batch-size", *TIME_BATCH_RANGE), help="= --batch")
    timm.add_argument("--img-size", dest="image_size", type=int, **alias, help="= --image-size")
    timm.add_argument("--precision", dest="dtype", **alias,
                      choices=(*DTYPE_CHOICES, *TIMM_PRECISION),
                      help="= --dtype; also timm's float32, float16, bfloat16, amp (fp16), "
                           "amp_bfloat16 (bf16)")
    timm.add_argument("--num-warm-iter", dest="warmup", **alias,
                      type=whole_number("--num-warm-iter", *WARMUP_RANGE), help="= --warmup")
    timm.add_argument("--num-bench-iter", dest="iters", **alias,
                      type=whole_number("--num-bench-iter", *ITERS_RANGE), help="= --iters")


def settings_from_args(args):
    """The one TimingSettings the arguments describe (TimingSettingError where one is bad)."""
    from ..timing import TimingSettings

    return TimingSettings(
        batch_size=args.batch, device=args.device,
        dtype=TIMM_PRECISION.get(args.dtype, args.dtype), channels_last=args.channels_last,
        cudnn_benchmark=False if args.no_cudnn_benchmark else None, compile=args.compile,
        cuda_graphs=args.cuda_graphs, mode=args.mode, fast=args.fast, warmup=args.warmup,
        iters=args.iters, seed=args.seed, cross_check=args.cross_check, freeze=args.freeze)


def run(spec, args) -> int:
    """Time as the arguments say. A bad setting (TimingSettingError), an unwritable --csv
    or a network too big for this device (SpecError, from builder.guards) exits 2 with one
    line; a failed run (TimingError) prints one line and returns 1."""
    from ..timing import TimingSettingError
    from . import UsageError

    try:
        return _run(spec, args)
    except TimingSettingError as exc:  # a setting this machine cannot honour: exit 2
        raise UsageError(str(exc)) from None


def _run(spec, args) -> int:
    from .. import guards
    from ..network import stage_plans
    from ..timing import (
        TimingError,
        device_name,
        device_total_memory,
        estimate_seconds,
        one_block,
        time_forms,
        time_model,
    )

    settings = settings_from_args(args)
    if args.csv is not None:
        _check_writable(args.csv)
    dev = settings.torch_device
    guards.check(spec, settings.batch_size,
                 guards.Limits.for_device(dev.type, device_total_memory(dev)),
                 mode="training" if settings.mode == "train" else "inference",
                 dtype_bytes=2 if settings.dtype in ("bf16", "fp16") else 4,
                 models=3 if args.forms else 1)  # before anything is built
    if not args.json:
        seconds = estimate_seconds(spec, settings, forms=args.forms,
                                   measure=dev.type == "cpu", block=args.one_block)
        if seconds > 30:
            print(f"note: this may take about {seconds:.0f} s on {device_name(dev)}",
                  file=sys.stderr)
    try:
        if args.forms:
            results = time_forms(spec, settings, block=args.one_block)
        elif args.one_block is not None:
            modules, shape, macs = one_block(spec, args.one_block, settings.seed)
            paper = stage_plans(spec)[args.one_block].paper_name
            results = [time_model(modules[spec.form], settings, input_shape=shape, macs=macs,
                                  name=f"{spec.name} {paper} block form ({spec.form})")]
        else:
            results = [time_model(spec, settings)]
    except TimingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.csv is not None:
        write_csv(args.csv, results)
    _print(results, args)
    return 0


def _print(results, args) -> None:
    from ..timing import format_table

    if args.json:
        data = [r.to_dict() for r in results]
        print(json.dumps(data if args.forms else data[0], indent=2))
        return
    print("\n\n".join(r.summary() for r in results))
    if args.forms:
        print("\nForms side by side (speed relative to form (c)): equal in math, not in speed")
        print(format_table(results))


def _cannot_write(path: str, reason: str):
    from . import UsageError

    return UsageError(f"--csv: cannot write {path!r}: {reason}")


def _check_writable(path: str) -> None:
    """UsageError (exit 2) before anything runs, where `path` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path)) if path else ""
    if not path or os.path.isdir(path):
        raise _cannot_write(path, "it is a folder" if path else "no file name")
    if not os.path.isdir(folder):
        raise _cannot_write(path, f"no such folder {folder!r}")
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise _cannot_write(path, "permission denied")


def write_csv(path: str, results) -> None:
    """One header row, one row per result (builder.timing.csv_header / csv_row)."""
    from ..timing import csv_header, csv_row

    mode = results[0].settings["mode"] if results else "inference"
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(csv_header(mode))
            writer.writerows([["" if v is None else v for v in csv_row(r)] for r in results])
    except (OSError, ValueError) as exc:
        raise _cannot_write(path, getattr(exc, "strerror", None) or str(exc)) from None
