"""ResNeXt Block Builder: spec -> PyTorch model in the paper's three forms, and its numbers.

    >>> import builder
    >>> spec = builder.PRESETS["resnext50_32x4d"]
    >>> builder.count_params(spec)
    25028904
    >>> model = builder.build_model(spec.replace(form="a"))
"""

from .blocks import ResNeXt
from .complexity import Counts, NetworkCounts, count_macs, count_params, match_width, network_counts
from .convert import check_equivalence, convert, randomize_
from .network import StagePlan, build_model, describe, stage_plans
from .spec import FORMS, PRESETS, ResNeXtSpec, SpecError, get_preset

__all__ = [
    "FORMS", "PRESETS", "Counts", "NetworkCounts", "ResNeXt", "ResNeXtSpec", "SpecError",
    "StagePlan", "build_model", "check_equivalence", "convert", "count_macs", "count_params",
    "describe", "get_preset", "match_width", "network_counts", "randomize_", "stage_plans",
]
