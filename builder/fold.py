"""BN folding and one-block extraction: model code, torch only (no clocks, no devices).

`fold_bn` gives the inference-only copy that builder.timing's "fast" mode times; `one_block`
gives one block in every form with the same weights (builder.timing.time_forms, builder.proof).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import blocks as B
from . import registry
from .complexity import block_counts
from .convert import dense_state, load_dense_state, randomize_
from .network import stage_plans
from .spec import FORMS, ResNeXtSpec


def _fold_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN as y = x * scale + shift, in float64."""
    var = bn.running_var.double()
    weight = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    bias = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = weight / torch.sqrt(var + bn.eps)
    return scale, bias - bn.running_mean.double() * scale


def _scaled_conv(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor | None) -> nn.Conv2d:
    """A copy of `conv` with its output channels scaled and `shift` added (as a bias)."""
    if conv.bias is not None:
        shift = conv.bias.double() * scale + (0 if shift is None else shift)
    weight = conv.weight
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, bias=shift is not None,
                    padding_mode=conv.padding_mode, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight.double() * scale.view(-1, 1, 1, 1))
        if shift is not None:
            new.bias.copy_(shift)
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        new.to(memory_format=torch.channels_last)
    return new


def _foldable(conv, bn) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and bn.running_var is not None
            and conv.out_channels == bn.num_features)


# -- form (a)'s special case: the BN on the aggregated sum -----------------------------------
def _fold_aggregated_sum(module: nn.Module) -> None:
    """A "sum" form, (a): fold the BN on the sum of the paths into every path's last conv
    (its shift added once, by path 0). Nothing for the other forms."""
    entry = registry.of_module(module)
    if entry is None or entry[1].merge != "sum":
        return
    conv_name, bn_name = entry[0].last_conv, entry[0].last_bn
    bn = getattr(module, bn_name)
    if not _foldable(getattr(module.paths[0], conv_name), bn):
        return
    scale, shift = _fold_scale_shift(bn)
    for i, path in enumerate(module.paths):
        setattr(path, conv_name, _scaled_conv(getattr(path, conv_name), scale,
                                              shift if i == 0 else None))
    setattr(module, bn_name, nn.Identity())


def fold_bn(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with each BatchNorm that follows a convolution folded into
    it (w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps), computed in
    float64) and replaced by nn.Identity. Valid for inference only.

    Folded: conv{k} -> bn{k} pairs of a block (builder's and torchvision's names), conv -> BN in
    an nn.Sequential (the projection shortcut), and in form (a) the BN on the aggregated sum
    (_fold_aggregated_sum). `time_model(fast=True)` checks the folded model's output against
    the original before timing it."""
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        _fold_aggregated_sum(module)
        for k in (1, 2, 3):
            conv, bn = getattr(module, f"conv{k}", None), getattr(module, f"bn{k}", None)
            if _foldable(conv, bn):
                setattr(module, f"conv{k}", _scaled_conv(conv, *_fold_scale_shift(bn)))
                setattr(module, f"bn{k}", nn.Identity())
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if _foldable(module[i], module[i + 1]):
                    module[i] = _scaled_conv(module[i], *_fold_scale_shift(module[i + 1]))
                    module[i + 1] = nn.Identity()
    return folded


def relative_error(expected: torch.Tensor, got: torch.Tensor) -> float:
    """max |expected - got| / max |expected|, in float64."""
    expected, got = expected.double(), got.double()
    scale = expected.abs().max().item() or 1.0
    return (expected - got).abs().max().item() / scale


def stage_error(spec: ResNeXtSpec, stage) -> str | None:
    """Why `stage` names no stage of `spec` (the message builder.timing raises), or None."""
    count = len(stage_plans(spec))
    if 0 <= stage < count:
        return None
    return f"block: stage {stage} is not allowed; this spec has stages 0 to {count - 1}"


def one_block(spec: ResNeXtSpec, stage: int = 0, seed: int = 0):
    """One block of `stage` (a later one: stride 1, in = out channels, like the paper's conv2
    block of 256-d in and out) in every form (a), (b), (c) with the same weights.

    Returns ({form: module}, input shape (C, H, W), multiply-adds for one input). A stage the
    spec does not have is a ValueError (builder.timing.one_block: TimingSettingError)."""
    why = stage_error(spec, stage)
    if why is not None:
        raise ValueError(why)
    plan = stage_plans(spec)[stage]
    forms = tuple(FORMS)
    torch.manual_seed(seed)
    modules = {form: B.BLOCK_CLASSES[spec.block, form](plan.out_channels, plan.width,
                                                      plan.out_channels, spec.cardinality, 1,
                                                      spec.stride_on, None)
               for form in forms}
    randomize_(modules["c"], seed)
    state = dense_state(modules["c"])
    for form in forms:
        if form != "c":
            load_dense_state(modules[form], state)
    macs = block_counts(spec, plan, first=False).macs
    return modules, (plan.out_channels, plan.size_out, plan.size_out), macs
