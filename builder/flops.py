"""FLOP counters side by side: ours, torchinfo's, torch's FlopCounterMode (forward and
forward + backward) and fvcore's where installed, each with its convention and a one-line
reason for every disagreement. No clock: counting only, on the meta device where it can.

Conventions: ours (builder.complexity) and torchinfo count multiply-adds (MACs), a conv's
weights times its output positions and a BN's or Linear's parameters once; FLOPs = 2 x MACs,
and forward + backward = 3 x the forward (the input gradient and the weight gradient each cost
about one forward). FlopCounterMode counts 2 FLOPs per multiply-add of convolutions and matrix
products only. fvcore counts one "flop" per multiply-add (its docs say so), convolutions and
matrix products only.

A known fault, checked by hand in tests/test_profile.py: torch.utils.flop_counter's
convolution_backward formula (conv_backward_flop) ignores `groups`: it counts the weight
gradient of a grouped convolution as a dense one, groups times too much. For a groups=32 3x3
that makes forward + backward 34 x its forward (1 + 1 + 32) where 3 x is right.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .complexity import network_counts
from .network import build_model
from .spec import ResNeXtSpec, SpecError

TRAIN_FACTOR = 3  # forward + input gradient + weight gradient, each about one forward


@dataclass(frozen=True)
class CounterRow:
    counter: str
    convention: str  # what it counts, and FLOPs per multiply-add
    forward_flops: int | None  # in FLOPs (2 per multiply-add), for the batch; None: n/a
    forward_backward_flops: int | None
    reason: str  # why it differs from ours ("" where it agrees), or why it is missing

    def to_dict(self) -> dict:
        return asdict(self)


def _flop_counter(model: nn.Module, x: torch.Tensor) -> tuple[int, int, dict]:
    """FlopCounterMode's forward and forward + backward FLOPs, and the forward + backward
    per operator, on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(x)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    per_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    return forward, counter.get_total_flops(), per_op


def _true_backward(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of every conv's and Linear's input and weight gradients counted by hand:
    each a forward's worth, the weight gradient of a grouped conv too (in/groups per output);
    no input gradient where the layer's input needs none (the image)."""
    total = 0

    def hook(module, args, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            flops = 2 * output.numel() * module.in_channels // module.groups * kh * kw
        else:
            flops = 2 * output.numel() * module.in_features
        total += flops * (2 if args[0].requires_grad else 1)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


def _extras(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds ours counts and FlopCounterMode does not: BN (2 per channel per image)
    and the Linear's bias (one per output per image)."""
    batch = x.shape[0]
    bn = sum(2 * m.num_features for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm))
    bias = sum(m.bias.numel() for m in model.modules()
               if isinstance(m, nn.Linear) and m.bias is not None)
    return batch * (bn + bias)


def compare(model: nn.Module, input_shape: tuple[int, ...], macs: int,
            batch_size: int = 1, torchinfo_macs: int | None | str = "count") -> list[CounterRow]:
    """The table for `model` (any device: counted on a meta copy) on a batch of
    `batch_size` inputs of `input_shape` (C, H, W); `macs`: our analytic multiply-adds of
    one input. `torchinfo_macs`: a count already made, None (not installed), or "count"."""
    meta = _meta_copy(model)
    x = torch.empty(batch_size, *input_shape, device="meta")  # an image: needs no gradient
    ours = 2 * macs * batch_size
    rows = [CounterRow("ours (builder.complexity)", "multiply-adds of convs, BN, Linear; "
                       "2 FLOPs per multiply-add; backward = 2 x forward", ours,
                       TRAIN_FACTOR * ours, "")]
    rows.append(_torchinfo_row(meta, x, ours, torchinfo_macs))
    forward, both, per_op = _flop_counter(meta, x)
    extras = 2 * _extras(meta, x)
    right = forward + _true_backward(meta, x)
    reason = (f"counts convolutions and matrix products only: no BN, no Linear bias "
              f"({extras:,} FLOPs, {100 * extras / ours:.2f}% of ours)"
              if forward != ours else "")
    back = both - forward
    grouped = any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in meta.modules())
    if both != right:
        why = (f"its convolution_backward formula ignores groups and counts a grouped conv's "
               f"weight gradient as dense: backward {back / forward:.1f} x the forward where "
               f"{(right - forward) / forward:.2f} x is right ({right:,} in all by hand, "
               "groups respected): a bug in torch.utils.flop_counter" if grouped else
               f"backward {back:,} FLOPs where {right - forward:,} by hand")
    else:
        why = (f"backward {back / forward:.2f} x the forward (no input gradient for the "
               "image), not the 2 x convention")
    rows.append(CounterRow("torch FlopCounterMode", "convs and matrix products (aten ops "
                           "dispatched); 2 FLOPs per multiply-add", forward, both,
                           "; ".join(r for r in (reason, why) if r)))
    rows.append(_fvcore_row(meta, x, ours))
    return rows


def _meta_copy(model: nn.Module) -> nn.Module:
    import copy

    meta = copy.deepcopy(model).to("meta")
    return meta.train()  # backward through BN in training mode: as a training step does


def _torchinfo_row(meta: nn.Module, x: torch.Tensor, ours: int, macs) -> CounterRow:
    convention = "multiply-adds (conv weights x output positions, BN and Linear params once)"
    if macs == "count":
        try:
            import torchinfo
        except ImportError:
            macs = None
        else:
            stats = torchinfo.summary(meta, input_size=tuple(x.shape), device="meta",
                                      verbose=0, mode="eval")
            macs = stats.total_mult_adds
    if macs is None:
        return CounterRow("torchinfo", convention, None, None, "not installed")
    flops = 2 * macs
    return CounterRow("torchinfo (x2: its MACs)", convention + "; no backward", flops, None,
                      "" if flops == ours else f"{flops - ours:+,} FLOPs from ours")


def _fvcore_row(meta: nn.Module, x: torch.Tensor, ours: int) -> CounterRow:
    convention = "one 'flop' per multiply-add, convs and matrix products; shown x2 here"
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return CounterRow("fvcore", convention, None, None, "not installed")
    try:
        flops = 2 * int(FlopCountAnalysis(meta.eval(), x.detach()).total())
    except Exception as exc:  # its JIT trace may refuse meta tensors
        return CounterRow("fvcore", convention, None, None, f"failed: {exc}".splitlines()[0])
    return CounterRow("fvcore (x2)", convention, flops, None,
                      "" if flops == ours else "counts convs and matrix products only; "
                      "BN counted as its own elementwise op, if at all")


def flop_counters(spec: ResNeXtSpec, batch_size: int = 1) -> list[CounterRow]:
    """The table for the spec's network (its form) on a batch of `batch_size` images."""
    if not isinstance(spec, ResNeXtSpec):
        raise SpecError("spec", type(spec).__name__, "expected a ResNeXtSpec")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError("batch_size", batch_size, "expected a whole number, 1 or more")
    model = build_model(spec, device="meta")
    try:
        from .summary import SummaryUnavailable, summarize
        macs = summarize(spec, depth=1, batch_size=batch_size).macs
    except (ImportError, SummaryUnavailable):
        macs = None
    shape = (spec.in_channels, spec.image_size, spec.image_size)
    return compare(model, shape, network_counts(spec).macs, batch_size, macs)


def counters_table(rows: list[CounterRow]) -> str:
    """The rows as plain text."""
    lines = [("counter", "forward GFLOP", "fwd+bwd GFLOP", "reason")]
    for r in rows:
        lines.append((r.counter,
                      "--" if r.forward_flops is None else f"{r.forward_flops / 1e9:.4g}",
                      "--" if r.forward_backward_flops is None
                      else f"{r.forward_backward_flops / 1e9:.4g}", r.reason or "agrees"))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join("  ".join([line[0].ljust(widths[0]), line[1].rjust(widths[1]),
                                line[2].rjust(widths[2]), line[3]]) for line in lines)
