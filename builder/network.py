"""spec -> the numbers of each stage (no model), and spec -> torch.nn.Module."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .blocks import ResNeXt
from .spec import ResNeXtSpec


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial size after a convolution or pooling window."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class StagePlan:
    """The hyper-parameters of one stage, computed from the spec alone."""

    index: int  # 0-based; torchvision calls stage i `layer{i+1}`, the paper conv{i+2}
    depth: int  # blocks in the stage
    in_channels: int  # channels into the first block
    width: int  # bottleneck width C*d of every block
    path_width: int  # d of this stage (width // cardinality)
    out_channels: int  # block output
    stride: int  # stride of the first block
    size_in: int  # spatial size into the stage
    size_out: int  # spatial size out of the stage

    @property
    def name(self) -> str:
        return f"layer{self.index + 1}"

    @property
    def paper_name(self) -> str:
        return f"conv{self.index + 2}"


def stem_size(spec: ResNeXtSpec) -> tuple[int, int]:
    """Spatial size after the stem conv and after the stem (max-pool included)."""
    if spec.stem == "imagenet":
        after_conv = conv_out(spec.image_size, 7, 2, 3)
        return after_conv, conv_out(after_conv, 3, 2, 1)
    return spec.image_size, spec.image_size


def stage_plans(spec: ResNeXtSpec) -> list[StagePlan]:
    plans = []
    channels = spec.stem_width
    size = stem_size(spec)[1]
    for i, depth in enumerate(spec.depths):
        stride = 1 if i == 0 else 2
        size_out = conv_out(size, 3, stride, 1)
        plans.append(StagePlan(i, depth, channels, spec.width(i), spec.path_width(i),
                               spec.out_channels(i), stride, size, size_out))
        channels, size = spec.out_channels(i), size_out
    return plans


@dataclass(frozen=True)
class BlockGeometry:
    """The numbers of one block, from its stage's plan: the one place the counts, the guards
    and the drawing take a block's channels, sizes and strides from."""

    in_channels: int
    width: int  # C*d
    path_width: int  # d
    out_channels: int
    stride: int
    size_in: int
    size_out: int
    size_mid: int  # spatial size after the first conv: size_out if it carries the stride
    stride1: int  # stride of the first conv (1x1, or the basic block's first 3x3)
    stride2: int  # stride of the bottleneck's 3x3
    projection: bool  # 1x1 conv + BN shortcut (shape changes) rather than the identity


def block_geometry(spec: ResNeXtSpec, plan: StagePlan, first: bool) -> BlockGeometry:
    """The first block of a stage may stride and project; every later one is identical."""
    in_channels = plan.in_channels if first else plan.out_channels
    stride = plan.stride if first else 1
    size_in = plan.size_in if first else plan.size_out
    stride_first = spec.block == "basic" or spec.stride_on == "1x1"
    return BlockGeometry(in_channels, plan.width, plan.path_width, plan.out_channels, stride,
                         size_in, plan.size_out, plan.size_out if stride_first else size_in,
                         stride if stride_first else 1, 1 if stride_first else stride,
                         stride != 1 or in_channels != plan.out_channels)


def figure_block(spec: ResNeXtSpec, stage: int) -> int:
    """The block of a stage shown by default: a later one (in = out, identity shortcut),
    as the paper's Fig. 3 draws, where the stage has one; else the first (0-based)."""
    return 1 if spec.depths[stage] > 1 else 0


def build_model(spec: ResNeXtSpec, device: str | torch.device | None = None,
                dtype: torch.dtype | None = None) -> ResNeXt:
    """The PyTorch model of a spec. For form (c) and the torchvision presets, module names,
    state_dict keys and shapes are torchvision's. `device="meta"` builds without memory."""
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"build_model expects a ResNeXtSpec, got {type(spec).__name__}")
    meta = torch.device(device or "cpu").type == "meta"
    with torch.device(device or "cpu"):
        model = ResNeXt(spec.block, spec.form, spec.cardinality, spec.width_per_group,
                        spec.depths, num_classes=spec.num_classes,
                        in_channels=spec.in_channels, stem=spec.stem,
                        stem_width=spec.stem_width, stride_on=spec.stride_on,
                        zero_init_residual=spec.zero_init_residual,
                        init_weights=not meta)  # meta tensors hold no values to initialise
    model.spec = spec
    if dtype is not None:
        model.to(dtype)
    return model


def describe(spec: ResNeXtSpec) -> list[str]:
    """Plain-language notes on a spec: what it is and what is worth knowing about it."""
    from .spec import FORMS

    notes = [f"{spec.name}: C={spec.cardinality}, d={spec.width_per_group}, depths="
             f"{list(spec.depths)}, form ({spec.form}) {FORMS[spec.form].description}"]
    if spec.block == "basic":
        notes.append(
            f"Depth-2 (basic) block: aggregating C={spec.cardinality} two-layer paths of width "
            f"d={spec.width_per_group} gives a dense block {spec.width(0)} wide in stage 1; "
            "both layers merge, so grouping brings nothing (paper Fig. 4). Form (c) builds it "
            "dense (groups=1); forms (a) and (b) draw the paths only to show the equivalence.")
    elif spec.cardinality == 1:
        notes.append("C=1: a plain ResNet bottleneck; the three forms coincide.")
    if spec.stride_on == "1x1":
        notes.append("Stride on the first 1x1 (ResNet v1): about 0.5% worse top-1 than on the "
                     "3x3 in torchvision's measurements.")
    return notes
