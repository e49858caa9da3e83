"""A timing result and its text: the summary, the side-by-side table, the CSV rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from .settings import FOLD_TOLERANCE


@dataclass
class TimingResult:
    """One timing run. Times are per iteration (one batch) in milliseconds."""

    name: str  # the network (and form), or the model's class name
    batch_size: int
    image_size: int
    median_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    iqr_ms: float
    images_per_s: float  # batch_size / median
    macs_per_image: int | None  # analytic multiply-adds of one forward pass, one image
    tflops: float | None  # achieved: 2 x MACs x batch (x3 in training) / median
    peak_tflops: float | None  # this device's matmul peak in the same dtype, measured
    peak_percent: float | None  # tflops / peak_tflops x 100
    peak_memory_bytes: int | None  # torch.cuda.max_memory_allocated; None on the CPU
    device_type: str  # "cpu" or "cuda"
    device_name: str
    torch_version: str
    settings: dict  # every setting used
    noisy: bool  # IQR >= 10% of the median
    times_ms: list[float] = field(default_factory=list)  # every timed iteration, in order
    fold_rel_error: float | None = None  # fast mode: folded vs original output
    check_median_ms: float | None = None  # torch.utils.benchmark.Timer on the same step
    notes: list[str] = field(default_factory=list)
    form: str | None = None  # the block form timed (a spec's, or a block module's), if known
    # other work during the timed iterations (builder.timing.contention), None if unmeasured
    contention: dict | None = None
    contended: bool = False  # the machine was saturated and other work took cores from it
    # torch.compile: seconds of the first warm-up call (compiling, then one call), which no
    # timed iteration includes; None without compile
    compile_s: float | None = None

    @property
    def check_ratio(self) -> float | None:
        """median_ms / check_median_ms: 1.0 when the two measurements agree."""
        return None if self.check_median_ms is None else self.median_ms / self.check_median_ms

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["check_ratio"] = self.check_ratio
        return data

    @property
    def device_label(self) -> str:
        """'CPU: <model>, N threads' or 'GPU: <name>': the one definition of this label."""
        return f"{'CPU' if self.device_type == 'cpu' else 'GPU'}: {self.device_name}"

    def summary(self) -> str:
        s = self.settings
        lines = [f"{self.name}: batch {self.batch_size} at {self.image_size}x{self.image_size}, "
                 f"{s['mode']}, {s['dtype']}, {variant_text(s)}",
                 f"  on {self.device_label}; torch {self.torch_version}; "
                 f"{s['warmup']} warm-up + {s['iters']} timed iterations ({s['timer']})",
                 f"  median {self.median_ms:.2f} ms (min {self.min_ms:.2f}, max "
                 f"{self.max_ms:.2f}, IQR {self.iqr_ms:.2f} ms = "
                 f"{100 * self.iqr_ms / self.median_ms:.1f}% of the median)"
                 + ("  NOISY: IQR >= 10% of the median" if self.noisy else ""),
                 f"  {self.images_per_s:,.1f} img/s"]
        if self.tflops is not None:
            lines[-1] += f"   {self.tflops:.3g} TFLOP/s"
            if self.peak_percent is not None:
                lines[-1] += (f" = {self.peak_percent:.1f}% of this device's {s['dtype']} "
                              f"matmul peak ({self.peak_tflops:.3g} TFLOP/s, measured)")
        if self.peak_memory_bytes is not None:
            lines.append(f"  peak memory allocated {self.peak_memory_bytes / 2**20:,.1f} MiB")
        else:
            lines.append("  peak memory: not measured on the CPU (PyTorch keeps no CPU "
                         "allocator statistics)")
        if self.fold_rel_error is not None:
            lines.append(f"  BN folded; output checked against the unfolded model: relative "
                         f"error {self.fold_rel_error:.1e} (tolerance "
                         f"{FOLD_TOLERANCE[s['dtype']]:.0e})")
        if self.compile_s is not None:
            lines.append(f"  {compile_text(self)}")
        if self.check_median_ms is not None:
            lines.append(f"  torch.utils.benchmark.Timer, same step: median "
                         f"{self.check_median_ms:.2f} ms (ratio {self.check_ratio:.3f})")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def compile_text(result: TimingResult) -> str:
    """What a compiled run measured, and what it left out."""
    return (f"torch.compile: the first warm-up call compiled the model ({result.compile_s:,.1f} "
            f"s, compiling and one call); that time is in no timed iteration: the "
            f"{result.settings['iters']} timed iterations ran the compiled code")


def variant_text(settings: dict) -> str:
    """The layout and compiler settings of a run: "channels_last + compile", or "eager"."""
    parts = [name for name in ("channels_last", "compile", "freeze", "cuda_graphs", "fast")
             if settings.get(name)]
    if settings.get("compile_mode") not in (None, "default"):
        parts[parts.index("compile")] = f"compile({settings['compile_mode']})"
    return " + ".join(parts) or "eager"


def format_table(results: Sequence[TimingResult], baseline: int = -1) -> str:
    """Results side by side; `speed` is img/s relative to results[baseline]."""
    rows = [("model", "median ms", "IQR %", "img/s", "TFLOP/s", "% peak", "speed", "")]
    base = results[baseline].images_per_s if results else 1.0
    for r in results:
        rows.append((r.name, f"{r.median_ms:.2f}", f"{100 * r.iqr_ms / r.median_ms:.1f}",
                     f"{r.images_per_s:,.1f}",
                     "" if r.tflops is None else f"{r.tflops:.3g}",
                     "" if r.peak_percent is None else f"{r.peak_percent:.1f}",
                     f"{r.images_per_s / base:.2f}x", "noisy" if r.noisy else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)



# Columns of `python -m builder time --csv`: timm's benchmark.py names first (model,
# infer_samples_per_sec, infer_step_time, infer_batch_size, infer_img_size; "train_" in
# train mode), then ours.
CSV_COLUMNS = ("model", "samples_per_sec", "step_time_ms", "batch_size", "img_size", "dtype",
               "device", "mode", "median_ms", "min_ms", "max_ms", "iqr_ms", "tflops",
               "peak_tflops", "peak_percent", "macs_per_image", "variant", "warmup", "iters",
               "noisy", "device_name", "torch_version")


def csv_header(mode: str) -> list[str]:
    """The header row: timm's prefix ("infer_" or "train_") on its own columns."""
    prefix = "train_" if mode == "train" else "infer_"
    timm = {"samples_per_sec", "step_time_ms", "batch_size", "img_size"}
    return [prefix + name if name in timm else name for name in CSV_COLUMNS]


def csv_row(r: TimingResult) -> list:
    """One result as CSV_COLUMNS' values (None for what was not measured)."""
    s = r.settings
    return [r.name, r.images_per_s, r.median_ms, r.batch_size, r.image_size, s["dtype"],
            s["device"], s["mode"], r.median_ms, r.min_ms, r.max_ms, r.iqr_ms, r.tflops,
            r.peak_tflops, r.peak_percent, r.macs_per_image, variant_text(s), s["warmup"],
            s["iters"], r.noisy, r.device_name, r.torch_version]
