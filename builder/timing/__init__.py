"""Honest timing of a spec or a model on one random batch: the only package that touches
devices and clocks.

What "honest" means here, as `torch.utils.benchmark` and nanoGPT's `bench.py` do it:
- the batch is drawn once from a seeded normal distribution (never zeros) and reused;
- warm-up iterations (which compile, pick cuDNN algorithms, fill caches) are not timed;
- on a GPU each iteration is timed by a pair of CUDA events and the host synchronises before
  reading them; on the CPU by `time.perf_counter` around each (synchronous) iteration;
- the median is reported with min, max and the interquartile range, and a result whose IQR
  reaches 10% of the median is flagged `noisy`, as `torch.utils.benchmark.Measurement` does;
- achieved TFLOP/s come from the analytic multiply-adds (`builder.complexity`), and are put
  against this device's own matrix-multiply peak in the same dtype, measured once per process
  (and, on the CPU, per thread count);
- on a GPU other than the current one (cuda:1, ...) every event, stream, graph capture and
  synchronisation runs inside `torch.cuda.device(that GPU)`; one run (or peak measurement) at a
  time per GPU in a process, since another thread's work would invalidate a graph capture;
- every attempt, failed or not, gives its memory back (and torch.compile's caches:
  `torch.compiler.reset()` before and after a compiled attempt).

The modules, by job: settings (TimingSettings, validated once), devices (devices, locks,
precision flags), clock (the wall clock, timed calls), stats, peak (the matmul peak), runner
(the attempt engine: compile, CUDA graphs, out of memory, the time limit), results
(TimingResult, tables, CSV rows), estimate (the cost model), api (time_model, time_forms),
profile (where the time goes: per layer, under torch.profiler).
BN folding and one-block extraction are model code: builder.fold (re-exported here).

`time_model` and `time_forms` take one `TimingSettings` (or its fields as keywords), and
`progress(fraction, text)` for a progress bar. `stopwatch()` is the wall clock for the rest of
builder/. Only `torch` is needed: the GPU machines that run the benchmark have no Gradio.

    >>> from builder import PRESETS, time_model
    >>> result = time_model(PRESETS["resnet18"].replace(image_size=64), batch_size=4,
    ...                     device="cpu", iters=5)
    >>> result.images_per_s == result.batch_size / result.median_ms * 1000
    True
"""

from ..fold import fold_bn, relative_error
from .api import one_block, time_forms, time_model
from .clock import stopwatch
from .devices import (
    DTYPES,
    GPU_ONLY_DTYPES,
    available_devices,
    device_name,
    device_total_memory,
    resolve_device,
)
from .errors import TimingError, TimingSettingError
from .estimate import estimate_seconds
from .peak import matmul_peak_tflops, memory_bandwidth_gbs, refresh_peak
from .profile import LAYER_COLUMNS, FormProfile, LayerProfile, ProfileResult, profile
from .results import (
    CSV_COLUMNS,
    TimingResult,
    compile_text,
    csv_header,
    csv_row,
    format_table,
    variant_text,
)
from .settings import (
    DEFAULT_ITERS,
    DEFAULT_WARMUP,
    FOLD_TOLERANCE,
    MODES,
    TRAIN_FLOP_FACTOR,
    TimingSettings,
)
from .stats import NOISE_THRESHOLD, Stats, quantile, summarize

__all__ = [
    "CSV_COLUMNS", "DEFAULT_ITERS", "DEFAULT_WARMUP", "DTYPES", "FOLD_TOLERANCE", "FormProfile",
    "GPU_ONLY_DTYPES", "LAYER_COLUMNS", "LayerProfile", "MODES", "NOISE_THRESHOLD",
    "ProfileResult", "Stats",
    "TRAIN_FLOP_FACTOR", "TimingError", "TimingResult", "TimingSettingError", "TimingSettings",
    "available_devices", "compile_text", "csv_header", "csv_row", "device_name",
    "device_total_memory", "estimate_seconds", "fold_bn", "format_table", "matmul_peak_tflops",
    "memory_bandwidth_gbs", "one_block", "profile", "quantile", "refresh_peak", "relative_error",
    "resolve_device", "stopwatch", "summarize", "time_forms", "time_model", "variant_text",
]
