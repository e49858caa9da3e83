"""spec -> torchinfo's summary, as rows with a `groups` column, and its totals.

torchinfo shows kernel shapes, output shapes, parameters and multiply-adds, but not a
convolution's `groups`, which is the point of ResNeXt: form (c)'s 3x3 has groups=C. The rows
here add it. The model is built on the meta device and summarised there: shapes, parameters
and multiply-adds need no memory and no arithmetic. During the forward pass the layers that
torch's meta device runs as Python references (the convolution, BN, pooling, the residual add,
the classifier) have their output shapes computed here instead (`_ShapeOnly`): the first of
those references in a process imports sympy and `torch._dynamo`, one to several seconds, and
all of them are slow. torchinfo sees the same modules and output shapes, so the table, the rows
and the totals do not change (tests/test_summary.py compares them with torchinfo on real CPU
models of every block and form). Forms (a) and (b) are walked with one path per block and the
other C - 1 listed from it (`_one_path_model`): the same table, 6-9x sooner for C = 32-64.
Times: benchmarks/bench_summary.py, bench_summary_forms.py and benchmarks/RESULTS.md.
torchinfo is imported only when a summary is asked for.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .network import build_model
from .registry import FORMS
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


def _window(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output size of a convolution or pooling window along one axis (no ceil mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pair(value) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, tuple | list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return value[0], value[1]
    return None  # "same", "valid", or anything else: left to torch


def _bind(names: tuple[str, ...], defaults: dict, args: tuple, kwargs: dict) -> dict:
    values = dict(defaults)
    values.update(zip(names, args, strict=False))
    values.update(kwargs)
    return values


def _is_meta_4d(x) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type == "meta" and x.dim() == 4


def _bias_fits(bias, channels: int) -> bool:
    return bias is None or (isinstance(bias, torch.Tensor) and bias.device.type == "meta"
                            and tuple(bias.shape) == (channels,))


def _positive(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape, or None where a size is under 1: torch raises its own error for that."""
    return shape if all(n >= 1 for n in shape) else None


def _conv_shape(args, kwargs):
    v = _bind(("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
              {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}, args, kwargs)
    x, w = v["input"], v["weight"]
    stride, padding, dilation = _pair(v["stride"]), _pair(v["padding"]), _pair(v["dilation"])
    groups = v["groups"]
    if not (_is_meta_4d(x) and _is_meta_4d(w) and stride and padding and dilation
            and type(groups) is int and groups >= 1 and x.shape[1] == w.shape[1] * groups
            and w.shape[0] % groups == 0 and _bias_fits(v["bias"], w.shape[0])):
        return None
    return _positive((x.shape[0], w.shape[0], *(_window(x.shape[2 + i], w.shape[2 + i],
                                                        stride[i], padding[i], dilation[i])
                                                for i in range(2))))


def _max_pool_shape(args, kwargs):
    v = _bind(("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
               "return_indices"), {"stride": None, "padding": 0, "dilation": 1,
                                   "ceil_mode": False, "return_indices": False}, args, kwargs)
    x, kernel = v["input"], _pair(v["kernel_size"])
    stride = kernel if v["stride"] in (None, [], ()) else _pair(v["stride"])
    padding, dilation = _pair(v["padding"]), _pair(v["dilation"])
    if not (_is_meta_4d(x) and kernel and stride and padding and dilation) or (
            v["ceil_mode"] or v["return_indices"]):
        return None
    return _positive((*x.shape[:2], *(_window(x.shape[2 + i], kernel[i], stride[i],
                                              padding[i], dilation[i]) for i in range(2))))


def _adaptive_pool_shape(args, kwargs):
    v = _bind(("input", "output_size"), {}, args, kwargs)
    x, size = v["input"], _pair(v.get("output_size"))
    return _positive((*x.shape[:2], *size)) if _is_meta_4d(x) and size else None


def _same_shape(args, kwargs):  # batch_norm: the input's shape
    x = args[0] if args else kwargs.get("input")
    return tuple(x.shape) if _is_meta_4d(x) else None


def _linear_shape(args, kwargs):
    v = _bind(("input", "weight", "bias"), {"bias": None}, args, kwargs)
    x, w = v["input"], v["weight"]
    if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and x.device.type
            == "meta" and w.device.type == "meta" and w.dim() == 2 and x.dim() >= 1
            and x.shape[-1] == w.shape[1] and _bias_fits(v["bias"], w.shape[0])):
        return None
    return (*x.shape[:-1], w.shape[0])


def _add_shape(args, kwargs):  # a + b, 0 + a (the sum of form (a)'s paths): equal shapes
    if kwargs or len(args) != 2:
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    scalars = [a for a in args if not isinstance(a, torch.Tensor)]
    if not tensors or any(t.device.type != "meta" or t.dtype != tensors[0].dtype
                          or t.shape != tensors[0].shape for t in tensors) or any(
            type(s) is not int for s in scalars):
        return None
    return tuple(tensors[0].shape)


def _cat_shape(args, kwargs):
    if set(kwargs) - {"tensors", "dim"}:  # out=...
        return None
    v = _bind(("tensors", "dim"), {"dim": 0}, args, kwargs)
    tensors, dim = v["tensors"], v["dim"]
    if not (isinstance(tensors, list | tuple) and tensors and all(map(_is_meta_4d, tensors))
            and dim == 1 and len({(t.shape[0], *t.shape[2:], t.dtype) for t in tensors}) == 1):
        return None
    first = tensors[0].shape
    return (first[0], sum(t.shape[1] for t in tensors), *first[2:])


F = nn.functional
_SHAPES = {  # torch function -> its output shape, or None to leave the call to torch
    torch.conv2d: _conv_shape, F.max_pool2d: _max_pool_shape,
    F.adaptive_avg_pool2d: _adaptive_pool_shape, F.batch_norm: _same_shape,
    F.linear: _linear_shape, torch.Tensor.add: _add_shape, torch.cat: _cat_shape,
}


# the blocks' `out += identity` (builder/blocks.py): `__iadd__` reaches here as TensorBase.add_
_IN_PLACE_ADDS = (torch.Tensor.__iadd__, torch.Tensor.add_, torch._C.TensorBase.add_)


class _ShapeOnly(TorchFunctionMode):
    """On the meta device, compute the output shape of the layers in `_SHAPES` here and return
    an empty meta tensor of that shape, instead of calling torch's meta kernels for them.

    Those kernels are Python references: the first in a process imports sympy (about 0.3 s)
    and, for the elementwise ones (add, BN, linear, pooling, cat), `torch._dynamo` (about 1 s,
    5 s on a loaded 2-core machine); the convolution's alone costs 2-3 ms a call. Only shapes
    are needed here: the values of meta tensors do not exist. A call whose arguments are not
    the plain meta tensors and integers expected (another device, "same" padding, ceil mode,
    broadcasting) goes to torch as before, and so does every other function. An in-place ReLU
    on the meta device is a C++ kernel and stays torch's."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _IN_PLACE_ADDS and _add_shape(args, kwargs) is not None:
            return args[0]  # `out += identity`, same shapes: the same tensor, nothing to compute
        shape_of = _SHAPES.get(func)
        shape = shape_of(args, kwargs) if shape_of is not None else None
        if shape is None:
            return func(*args, **kwargs)
        first = args[0] if args else next(iter(kwargs.values()))
        like = next(a for a in (first[0] if isinstance(first, list | tuple) else first, *args)
                    if isinstance(a, torch.Tensor))  # torch.cat's first tensor; 0 + a: a
        return torch.empty(shape, dtype=like.dtype, device="meta")


def _one_path_model(spec: ResNeXtSpec) -> tuple[nn.Module, set[int]]:
    """The model torchinfo walks, and the ids of the paths it stands for C times.

    Forms (a) and (b) repeat C identical paths in every block; torchinfo's hooks cost about
    the same for each module call, so it walks a model with one path per block (the spec
    with C = 1: its path is the C-path block's, to the shape), whose blocks aggregate that
    path's output C times, and whose convolution after the concatenation (form (b)) reads
    the C x d channels. `_all_paths` then lists the other C - 1 paths. Form (c) and C = 1
    are walked as they are."""
    cardinality = spec.cardinality
    if cardinality == 1 or FORMS[spec.form].merge == "dense":
        return build_model(spec, device="meta"), set()
    model = build_model(spec.replace(cardinality=1), device="meta")
    first = set()
    for block in model.modules():
        paths = getattr(block, "paths", None)
        if not isinstance(paths, nn.ModuleList):
            continue
        first.add(id(paths[0]))
        block.aggregate = functools.partial(_repeated, block.aggregate, cardinality)
        for name, conv in block.named_children():  # the block's own conv reads the paths
            if isinstance(conv, nn.Conv2d):
                setattr(block, name, nn.Conv2d(
                    conv.in_channels * cardinality, conv.out_channels, conv.kernel_size,
                    conv.stride, conv.padding, conv.dilation, bias=conv.bias is not None,
                    device="meta"))
    return model, first


def _statistics(torchinfo, model: nn.Module, spec: ResNeXtSpec, depth: int, batch_size: int):
    """torchinfo's statistics of `model` (on the meta device) for the spec's input."""
    size = spec.image_size
    with _ShapeOnly():
        return torchinfo.summary(
            model, input_size=(batch_size, spec.in_channels, size, size), device="meta",
            depth=depth, mode="eval", verbose=0,
            col_names=("kernel_size", "output_size", "num_params", "mult_adds"),
            row_settings=("var_names",))


def _repeated(aggregate, times: int, outputs):
    return aggregate(list(outputs) * times)


def _all_paths(stats, first_paths: set[int], cardinality: int):
    """torchinfo's statistics with every path listed: after each block's first path (and
    the layers under it) its C - 1 copies, named 1 .. C-1, and the containers above counting
    their parameters; then torchinfo's own ModelStatistics sums the totals and prints the
    table, as it does for the whole model (tests/test_summary.py compares the two)."""
    from torchinfo.model_statistics import ModelStatistics
    from torchinfo.torchinfo import set_children_layers

    layers, out, i = stats.summary_list, [], 0
    while i < len(layers):
        info = layers[i]
        end = i + 1
        if id(info.module) not in first_paths or info.is_recursive:
            out.append(info)
            i = end
            continue
        while end < len(layers) and layers[end].depth > info.depth:
            end += 1
        span = layers[i:end]
        for ancestor in _ancestors(out, info.depth):
            for key in ("num_params", "trainable_params", "param_bytes"):
                setattr(ancestor, key, getattr(ancestor, key)
                        + (cardinality - 1) * getattr(info, key))
        out.extend(span)
        for k in range(1, cardinality):
            copies = [copy.copy(layer) for layer in span]
            copies[0].var_name = str(k)
            out.extend(copies)
        i = end
    set_children_layers(out)
    return ModelStatistics(out, stats.input_size, stats.total_input, stats.formatting)


def _ancestors(layers: list, depth: int) -> list:
    """The entries that hold the next one at `depth`: the nearest before it at each smaller
    depth."""
    found = []
    for layer in reversed(layers):
        if layer.depth < depth:
            found.append(layer)
            depth = layer.depth
            if depth == 0:
                break
    return found


def _named(layers: list):
    """(entry, module path) in order: the path is the var_names from depth 1 down."""
    stack: list[str] = []
    for layer in layers:
        del stack[max(layer.depth - 1, 0):]
        if layer.depth > 0:
            stack.append(layer.var_name)
        yield layer, ".".join(stack)


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

    model, first_paths = _one_path_model(spec)
    stats = _statistics(torchinfo, model, spec, depth, batch_size)
    if first_paths:
        stats = _all_paths(stats, first_paths, spec.cardinality)
    rows = [_row(info, name, depth) for info, name in _named(stats.summary_list)
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
