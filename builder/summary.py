"""spec -> torchinfo's summary, as rows with a `groups` column, and its totals.

torchinfo shows kernel shapes, output shapes, parameters and multiply-adds, but not a
convolution's `groups`, which is the point of ResNeXt: form (c)'s 3x3 has groups=C. The rows
here add it. The model is built on the meta device and summarised there: shapes, parameters
and multiply-adds need no memory and no arithmetic, so even ResNeXt-101 takes about half a
second (benchmarks/bench_summary.py; the first call in a process also pays torch's one-time
set-up of the meta device). torchinfo is imported only when a summary is asked for.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .network import build_model
from .spec import ResNeXtSpec, SpecError

DEPTH_RANGE = (0, 16)  # torchinfo's depth: 0 is the network alone; our deepest layer is 5
BATCH_RANGE = (1, 4096)  # meta tensors cost nothing, but the counts should stay readable


class SummaryUnavailable(RuntimeError):
    """torchinfo is not installed."""


@dataclass(frozen=True)
class SummaryRow:
    """One row of torchinfo's table (a module at depth <= the summary's depth).

    `params` and `macs` follow torchinfo's table: a module at the deepest level shown (or one
    with no children) counts everything inside it; a container above that level counts only
    what its children do not (0 for ours), so the column sums are the totals. A module called
    more than once (our `relu`) counts its parameters once and its multiply-adds every call.
    """

    depth: int  # 0 is the network, 1 its children (conv1, layer1, fc), ...
    name: str  # module path, `model.get_submodule(name)`: "" is the network, "layer1.0.conv2"
    kind: str  # class name: "Conv2d", "Bottleneck", ...
    kernel_size: str  # "3x3"; "" for a layer without a kernel
    groups: int | None  # a convolution's groups (C for form (c)'s 3x3); None when not a conv
    output_shape: tuple[int, ...]  # (N, C, H, W); () for a container that is never called
    params: int
    macs: int


@dataclass(frozen=True)
class SummaryResult:
    spec: ResNeXtSpec
    depth: int
    batch_size: int
    rows: list[SummaryRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    macs: int = 0  # multiply-adds for the whole batch; FLOPs = 2 x MACs
    input_bytes: int = 0  # torchinfo's estimates, float32
    forward_backward_bytes: int = 0  # outputs of layers with parameters, x2 for gradients
    params_bytes: int = 0
    table: str = ""  # torchinfo's own printed table

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + self.forward_backward_bytes + self.params_bytes

    def to_dict(self) -> dict:
        """Plain data for JSON: the spec as in `ResNeXtSpec.to_dict`, shapes as lists."""
        rows = []
        for row in self.rows:
            data = asdict(row)
            data["output_shape"] = list(row.output_shape)
            rows.append(data)
        return {
            "spec": self.spec.to_dict(), "depth": self.depth, "batch_size": self.batch_size,
            "rows": rows, "total_params": self.total_params,
            "trainable_params": self.trainable_params, "macs": self.macs,
            "input_bytes": self.input_bytes,
            "forward_backward_bytes": self.forward_backward_bytes,
            "params_bytes": self.params_bytes, "total_bytes": self.total_bytes,
            "table": self.table,
        }


def _check_int(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(name, value, f"expected a whole number from {lo} to {hi}")


def _kernel_text(kernel) -> str:
    if kernel is None:
        return ""
    if isinstance(kernel, int):
        kernel = [kernel, kernel]
    return "x".join(str(k) for k in kernel)


def _leaf_macs(info) -> int:
    """Multiply-adds of every call to a layer without children, in or under `info`.
    (torchinfo's `children` are all the layers under it, not only the direct ones.)"""
    if info.is_leaf_layer:
        return info.macs
    return sum(child.macs for child in info.children if child.is_leaf_layer)


def _row(info, name: str, max_depth: int) -> SummaryRow:
    """A row as torchinfo's table shows it, with numbers rather than strings."""
    whole = info.is_leaf_layer or info.depth == max_depth
    if info.is_recursive:  # a second call of the same module: its parameters are counted
        params = 0
    else:
        params = info.num_params if whole else info.leftover_params()
    module = info.module
    groups = module.groups if isinstance(module, nn.modules.conv._ConvNd) else None
    return SummaryRow(depth=info.depth, name=name, kind=info.class_name,
                      kernel_size=_kernel_text(info.kernel_size), groups=groups,
                      output_shape=tuple(info.output_size), params=params,
                      macs=_leaf_macs(info) if whole else 0)


def _shape_only_batch_norms(model: nn.Module) -> nn.Module:
    """On the meta device only shapes are computed, and a BN keeps its input's shape. torch's
    meta batch_norm is a Python decomposition of some twenty ops (about 5 ms a BN, half of a
    ResNeXt-101 summary), so each BN of this throwaway model returns an empty tensor of its
    input's shape instead. Parameters, multiply-adds and the table do not change
    (tests/test_summary.py compares with torchinfo on a real CPU model)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = torch.empty_like
    return model


def summarize(spec: ResNeXtSpec, depth: int = 3, batch_size: int = 1) -> SummaryResult:
    """torchinfo's summary of the spec's model for a batch of `batch_size` images.

    Args:
        spec: the network.
        depth: how deep the rows go (torchinfo's `depth`): 1 shows stem, stages and head;
            3 shows the layers of each block. Totals never depend on it. Default 3.
        batch_size: images per batch; multiply-adds and memory scale with it. Default 1.

    For batch 1, `total_params` and `macs` equal `network_counts(spec)` exactly.
    """
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"summarize expects a ResNeXtSpec, got {type(spec).__name__}")
    _check_int("depth", depth, *DEPTH_RANGE)
    _check_int("batch_size", batch_size, *BATCH_RANGE)
    try:
        import torchinfo
    except ImportError:
        raise SummaryUnavailable("the summary needs torchinfo: pip install torchinfo") from None

    model = _shape_only_batch_norms(build_model(spec, device="meta"))
    size = spec.image_size
    stats = torchinfo.summary(
        model, input_size=(batch_size, spec.in_channels, size, size), device="meta",
        depth=depth, mode="eval", verbose=0,
        col_names=("kernel_size", "output_size", "num_params", "mult_adds"),
        row_settings=("var_names",))
    names = {id(module): name for name, module in model.named_modules()}
    rows = [_row(info, names[id(info.module)], depth) for info in stats.summary_list
            if info.depth <= depth]
    return SummaryResult(
        spec=spec, depth=depth, batch_size=batch_size, rows=rows,
        total_params=stats.total_params, trainable_params=stats.trainable_params,
        macs=stats.total_mult_adds, input_bytes=stats.total_input,
        forward_backward_bytes=stats.total_output_bytes, params_bytes=stats.total_param_bytes,
        table=str(stats))


def rows_table(result: SummaryResult) -> str:
    """The rows as a plain text table, with the groups column torchinfo lacks."""
    header = ("layer", "kind", "kernel", "groups", "output shape", "params", "MACs")
    lines = [header]
    for row in result.rows:
        shape = "x".join(str(n) for n in row.output_shape) if row.output_shape else "--"
        lines.append(("  " * row.depth + (row.name.rsplit(".", 1)[-1] or "(network)"),
                      row.kind, row.kernel_size or "--",
                      "--" if row.groups is None else str(row.groups), shape,
                      f"{row.params:,}" if row.params else "--",
                      f"{row.macs:,}" if row.macs else "--"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for k, line in enumerate(lines):
        out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def run_cli(spec: ResNeXtSpec, args) -> int:
    """python -m builder summary: torchinfo's table (or --rows, or --json)."""
    try:
        result = summarize(spec, depth=args.depth, batch_size=args.batch)
    except SummaryUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif args.rows:
        print(rows_table(result))
        print(f"\ntotal params {result.total_params:,}   multiply-adds {result.macs:,}")
    else:
        print(result.table)
    return 0
