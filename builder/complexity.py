"""Analytic parameter and multiply-add counts from the spec alone (no model is built).

Multiply-adds are counted as torchinfo counts them, for one image: a convolution's weights
times its output positions; a BatchNorm's or Linear's parameters once. FLOPs = 2 x MACs.
The three forms have the same counts: the paths of (a) and (b) are slices of (c)'s layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .network import StagePlan, block_geometry, conv_out, stage_plans, stem_size
from .spec import ResNeXtSpec, SpecError


@dataclass(frozen=True)
class Counts:
    params: int = 0
    macs: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.params + other.params, self.macs + other.macs)

    def __mul__(self, times: int) -> Counts:
        return Counts(self.params * times, self.macs * times)

    @property
    def flops(self) -> int:
        return 2 * self.macs


def conv_counts(in_channels: int, out_channels: int, kernel: int, size_out: int,
                groups: int = 1) -> Counts:
    params = kernel * kernel * (in_channels // groups) * out_channels
    return Counts(params, params * size_out * size_out)


def bn_counts(channels: int) -> Counts:
    return Counts(2 * channels, 2 * channels)


def block_counts(spec: ResNeXtSpec, plan: StagePlan, first: bool) -> Counts:
    """One block of a stage: the first (which may stride and project) or a later one."""
    g = block_geometry(spec, plan, first)
    w, out, groups, size = g.width, g.out_channels, spec.cardinality, g.size_out
    if spec.block == "bottleneck":
        total = (conv_counts(g.in_channels, w, 1, g.size_mid) + bn_counts(w)
                 + conv_counts(w, w, 3, size, groups) + bn_counts(w)
                 + conv_counts(w, out, 1, size) + bn_counts(out))
    else:  # basic: dense, both layers merge (paper Fig. 4)
        total = (conv_counts(g.in_channels, w, 3, size) + bn_counts(w)
                 + conv_counts(w, out, 3, size) + bn_counts(out))
    if g.projection:
        total = total + conv_counts(g.in_channels, out, 1, conv_out(g.size_in, 1, g.stride, 0))
        total = total + bn_counts(out)
    return total


@dataclass(frozen=True)
class StageCounts:
    plan: StagePlan
    first_block: Counts
    other_block: Counts

    @property
    def total(self) -> Counts:
        return self.first_block + self.other_block * (self.plan.depth - 1)


@dataclass(frozen=True)
class NetworkCounts:
    spec: ResNeXtSpec
    stem: Counts
    stages: list[StageCounts] = field(default_factory=list)
    head: Counts = Counts()

    @property
    def total(self) -> Counts:
        total = self.stem + self.head
        for stage in self.stages:
            total = total + stage.total
        return total

    @property
    def params(self) -> int:
        return self.total.params

    @property
    def macs(self) -> int:
        return self.total.macs


def network_counts(spec: ResNeXtSpec) -> NetworkCounts:
    """Parameters and multiply-adds of the stem, every stage and the head."""
    kernel = 7 if spec.stem == "imagenet" else 3
    conv_size = stem_size(spec)[0]
    stem = conv_counts(spec.in_channels, spec.stem_width, kernel, conv_size) + bn_counts(
        spec.stem_width)
    stages = [StageCounts(plan, block_counts(spec, plan, True), block_counts(spec, plan, False))
              for plan in stage_plans(spec)]
    features = spec.out_channels(len(spec.depths) - 1)
    head_params = features * spec.num_classes + spec.num_classes
    return NetworkCounts(spec, stem, stages, Counts(head_params, head_params))


def count_params(spec: ResNeXtSpec) -> int:
    return network_counts(spec).params


def count_macs(spec: ResNeXtSpec) -> int:
    return network_counts(spec).macs


def block_weight_params(cardinality: int, d: int, in_channels: int, out_channels: int) -> int:
    """The paper's per-block count, BN ignored: C * (in*d + 3*3*d*d + d*out)."""
    return cardinality * (in_channels * d + 9 * d * d + d * out_channels)


def match_width(cardinality: int, in_channels: int = 256, out_channels: int = 256,
                reference_cardinality: int = 1, reference_width: int = 64) -> int:
    """The width per group d that keeps a bottleneck block's parameters (and so its
    multiply-adds, at a given size) closest to a reference block.

    The default reference is the ResNet bottleneck of conv2: 256-d in and out, one path of
    width 64 (69,632 weights). This reproduces the paper's Table 2: C=2 -> 40, 4 -> 24,
    8 -> 14, 32 -> 4. For conv3 (512-d, reference width 128) pass in_channels=512,
    out_channels=512, reference_width=128; ties go to the smaller d.
    """
    for name, value in (("cardinality", cardinality), ("in_channels", in_channels),
                        ("out_channels", out_channels),
                        ("reference_cardinality", reference_cardinality),
                        ("reference_width", reference_width)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 16:
            raise SpecError(name, value, "expected a whole number from 1 to 65536")
    target = block_weight_params(reference_cardinality, reference_width, in_channels,
                                 out_channels)
    # params grow monotonically with d: walk up until past the target, keep the closer
    best_d, best_gap = 1, None
    d = 1
    while True:
        gap = block_weight_params(cardinality, d, in_channels, out_channels) - target
        if best_gap is None or abs(gap) < abs(best_gap):
            best_d, best_gap = d, gap
        if gap >= 0:
            return best_d
        d += 1


def matched_width(spec: ResNeXtSpec, reference: ResNeXtSpec) -> int:
    """The width per group d that keeps the complexity of `reference` at the spec's
    cardinality: for a bottleneck, the paper's rule on the first stage's block (`match_width`,
    Table 2); for a basic block, which is dense C*d wide (Fig. 4), the same C*d."""
    if spec.block == "basic":
        return max(1, round(reference.cardinality * reference.width_per_group
                            / spec.cardinality))
    channels = spec.out_channels(0)
    return match_width(spec.cardinality, channels, channels,
                       reference_cardinality=reference.cardinality,
                       reference_width=reference.width_per_group)
