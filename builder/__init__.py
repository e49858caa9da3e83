"""ResNeXt Block Builder: spec -> PyTorch model in the paper's three forms, and its numbers.

    >>> import builder
    >>> spec = builder.PRESETS["resnext50_32x4d"]
    >>> builder.count_params(spec)
    25028904
    >>> model = builder.build_model(spec.replace(form="a"))
"""

__version__ = "0.2.0"  # also the package's version (pyproject.toml reads it); see CHANGELOG.md

from . import registry
from .blocks import ResNeXt
from .complexity import Counts, NetworkCounts, count_macs, count_params, match_width, network_counts
from .convert import check_equivalence, convert, randomize_
from .export import ExportUnavailable, export_json, export_onnx, export_source
from .graph import GraphvizError, draw_block, draw_network, render, svg_text
from .network import StagePlan, build_model, describe, stage_plans
from .spec import FORMS, PRESETS, ResNeXtSpec, SpecError, get_preset
from .summary import SummaryResult, summarize
from .timing import (
    TimingError,
    TimingResult,
    TimingSettingError,
    available_devices,
    estimate_seconds,
    time_forms,
    time_model,
)

__all__ = [
    "__version__", "registry",
    "FORMS", "PRESETS", "Counts", "NetworkCounts", "ResNeXt", "ResNeXtSpec", "SpecError",
    "StagePlan", "build_model", "check_equivalence", "convert", "count_macs", "count_params",
    "describe", "get_preset", "match_width", "network_counts", "randomize_", "stage_plans",
]
__all__ += ["TimingError", "TimingResult", "TimingSettingError", "available_devices",
            "estimate_seconds", "time_forms", "time_model"]  # builder.timing
__all__ += ["GraphvizError", "draw_block", "draw_network", "render", "svg_text"]  # builder.graph
__all__ += ["ExportUnavailable", "SummaryResult", "export_json", "export_onnx", "export_source",
            "summarize"]  # builder.summary, builder.export
