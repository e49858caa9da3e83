"""Summary statistics of per-iteration times, as torch.utils.benchmark computes them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NOISE_THRESHOLD = 0.10  # IQR / median at which torch.utils.benchmark warns


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values with linear interpolation (numpy's and torch.quantile's
    default, which torch.utils.benchmark uses)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass(frozen=True)
class Stats:
    """Summary of per-iteration times in milliseconds."""

    median: float
    min: float
    max: float
    q1: float  # 25th percentile
    q3: float  # 75th percentile

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def noisy(self) -> bool:
        """IQR at or above 10% of the median: torch.utils.benchmark's warning threshold."""
        return self.iqr >= NOISE_THRESHOLD * self.median


def summarize(times_ms: Sequence[float]) -> Stats:
    values = sorted(float(t) for t in times_ms)
    if not values:
        raise ValueError("summarize: no times")
    return Stats(quantile(values, 0.5), values[0], values[-1], quantile(values, 0.25),
                 quantile(values, 0.75))

