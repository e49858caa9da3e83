"""Graphviz drawings of a block and of the network: spec -> graphviz.Digraph -> SVG, PNG, DOT.

    >>> import builder
    >>> spec = builder.PRESETS["resnext50_32x4d"].replace(form="a")
    >>> svg = builder.render(builder.draw_block(spec, stage=1), "svg")  # runs Graphviz's `dot`
    >>> dot = builder.render(builder.draw_network(spec), "dot")  # the source; no `dot` needed

The numbers come from `stage_plans` and `network_counts`; no torch model is built. The block
view draws one block the way the paper's Fig. 3 does: form (a) as C paths summed, (b) as C
paths concatenated then one 1x1, (c) as three layers with groups=C on the 3x3, with BN, ReLU,
the shortcut, the addition and the last ReLU. Above MAX_PATHS paths, it draws the first two,
one elision node saying how many identical paths it stands for, and the last: a block view has
at most 40 nodes whatever C is. The network view draws one cluster per stage, with the first
block (which may stride and project) and the identical later blocks collapsed into one node.

Node ids are stable: each is the node's DOT name and the `id` of its `<g>` in the SVG, so a view
can highlight a part by id. Block view (in brackets, the torch module it draws, in
builder.blocks; form (c) has torchvision's Bottleneck / BasicBlock names):
    input, output                 the block's input x and output y
    path{i}_conv1, path{i}_bn1, path{i}_relu1, path{i}_conv2, path{i}_bn2, path{i}_relu2,
    path{i}_conv3                 path i of forms (a) and (b), 0-based [paths.{i}.conv1, ...];
                                  its box is cluster_path{i}, titled "path {i+1}"
    paths_elided                  the node standing for the paths not drawn, in cluster_elided;
                                  its dashed line ends at paths_elided_end (drawn invisible)
    sum                           form (a): the sum of the C paths
    concat                        form (b): the concatenation of the C paths
    conv1, bn1, relu1, conv2, bn2, relu2, conv3, bn3
                                  the layers outside paths: all of form (c) [conv1 ... bn3];
                                  in (b) the ones after `concat` (conv3, bn3; basic block
                                  conv2, bn2); in (a) the BN on the sum (bn3; basic block bn2)
    shortcut_conv, shortcut_bn    the 1x1 projection [downsample.0, downsample.1]; when the
                                  shortcut is the identity, the edge input-add draws it
    add, relu                     the residual addition and the block's last ReLU
Network view:
    input; cluster_stem: stem_info, stem_conv, stem_bn, stem_relu, stem_pool (ImageNet stem)
    cluster_layer{k}: layer{k}_info, layer{k}_first, layer{k}_rest
                                  stage k, 1-based like torchvision's layer{k}; `rest` stands
                                  for the identical blocks 2..depth, absent at depth 1
    cluster_head: head_info, avgpool, fc, output
    (*_info are the captions: repeat count, channels, width, size, params, multiply-adds)
Edges: id "{tail}-{head}" (node ids contain no "-"). A block's edges carry the tensor shape,
channels×H×W: x into each path (form (c): into conv1) and into the shortcut (the identity edge
says "identity"), each conv's output, each path's output, the sum, and the addition.
Each node's SVG class names its kind: io, conv1x1, conv3x3, gconv3x3, conv, bn, relu, merge,
shortcut, pool, fc, elision, block, caption.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

from .complexity import network_counts
from .network import BlockGeometry, StagePlan, block_geometry, stage_plans, stem_size
from .registry import FORMS
from .spec import ResNeXtSpec, SpecError

if TYPE_CHECKING:
    import graphviz

MAX_PATHS = 4  # up to this many paths are all drawn; above it: first two, elision, last
MAX_BLOCK_NODES = 40  # the block view never has more nodes than this (tests/test_graph.py)
DEFAULT_TIMEOUT = 20.0  # seconds for one run of `dot`
PNG_DPI = 144  # 2x: sharp on high-density screens and in the README
FORMATS = ("svg", "png", "dot")
INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian, Ubuntu), "
                "`brew install graphviz` (macOS), or see https://graphviz.org/download/")

# The drawing brings its own white background, so an SVG or PNG reads the same on a light
# page, on a dark one (Gradio's #0b0f19) and on its own: no text colour reaches WCAG's 4.5:1
# on both white and near-black (the best grey gets about 4.35:1), so text is never drawn on a
# transparent background. Text is dark on pastel fills, the title near-black and edge labels
# slate, all at least 4.5:1 on what they sit on (tests/test_graph.py computes the ratios).
# Colours are 6-digit hex: Graphviz 2.43 rejects the short form.
FONT = "Helvetica,Arial,sans-serif"
BACKGROUND = "#ffffff"
TEXT = "#111827"  # node text, cluster titles and captions
TITLE = "#1e293b"  # the drawing's title and notes, on BACKGROUND
LABEL = "#475569"  # edge labels (shapes), on BACKGROUND or on CLUSTER_FILL
LINE = "#64748b"  # edge strokes: graphics, not text
BORDER = "#475569"
CLUSTER_FILL = "#f8fafc"
FILL = {
    "io": "#e5e7eb",
    "conv1x1": "#bfdbfe",
    "conv3x3": "#fde68a",
    "gconv3x3": "#fdba74",
    "conv": "#fde68a",  # the stem's 7x7 or 3x3
    "bn": "#ddd6fe",
    "relu": "#bbf7d0",
    "merge": "#fbcfe8",
    "shortcut": "#99f6e4",
    "pool": "#a5f3fc",
    "fc": "#fecaca",
    "elision": "#f3f4f6",
    "block": "#f1f5f9",
    "caption": CLUSTER_FILL,  # text on the cluster's own fill
}


class GraphvizError(RuntimeError):
    """Rendering failed: `dot` is missing, failed or timed out. `.source` holds the DOT text,
    so the caller can still show or save it."""

    def __init__(self, message: str, source: str = ""):
        super().__init__(message)
        self.source = source


def _graphviz():
    try:
        import graphviz
    except ImportError:
        raise GraphvizError("the graphviz Python package is missing: `pip install graphviz` "
                            f"(and for rendering, {INSTALL_HINT})") from None
    return graphviz


# -- small helpers --------------------------------------------------------------------------

def _shape(channels: int, size: int) -> str:
    """A tensor shape as C×H×W."""
    return f"{channels}×{size}×{size}"


def _macs(n: int) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _html(title: str, *lines: str, size: int = 13, align: str = "") -> str:
    """An HTML-like Graphviz label: a bold first line, smaller lines under it; each line
    centred, or aligned "left"."""
    parts = [f"<b>{html.escape(title)}</b>"]
    parts += [f'<font point-size="{size - 2}">{html.escape(line)}</font>' for line in lines
              if line]
    br = f'<br align="{align}"/>' if align else "<br/>"
    return "<" + br.join(parts) + (br if align else "") + ">"


class _Drawing:
    """A Digraph with this module's style: every node gets an id and a class naming its kind."""

    def __init__(self, name: str, title: str, subtitle: list[str], rankdir: str):
        self.graph = _graphviz().Digraph(
            name,
            graph_attr={"rankdir": rankdir, "bgcolor": BACKGROUND, "fontname": FONT,
                        "fontcolor": TITLE, "labelloc": "t", "labeljust": "c",
                        "nodesep": "0.25", "ranksep": "0.3", "pad": "0.25",
                        "fontsize": "16", "label": _html(title, *subtitle, size=15),
                        "id": name},
            node_attr={"fontname": FONT, "fontcolor": TEXT, "fontsize": "12",
                       "shape": "box", "style": "rounded,filled", "color": BORDER,
                       "penwidth": "1.2", "margin": "0.12,0.05", "height": "0.3"},
            edge_attr={"fontname": FONT, "fontcolor": LABEL, "fontsize": "10", "color": LINE,
                       "arrowsize": "0.7", "penwidth": "1.2"})

    def node(self, graph, name: str, kind: str, label: str, **attrs) -> str:
        graph.node(name, label, id=name, fillcolor=FILL[kind], **{"class": kind}, **attrs)
        return name

    @staticmethod
    def edge(graph, tail: str, head: str, label: str = "", **attrs) -> None:
        if label:
            attrs["label"] = f" {label} "
        graph.edge(tail, head, id=f"{tail}-{head}", **attrs)


def _conv(kernel: int, in_channels: int, out_channels: int, stride: int = 1,
          groups: int = 1) -> str:
    notes = []
    if groups > 1:
        notes.append(f"groups={groups} ({groups} × {in_channels // groups} channels)")
    if stride > 1:
        notes.append(f"stride {stride}")
    return _html(f"{kernel}×{kernel} conv, {in_channels}→{out_channels}", ", ".join(notes))


# -- the block ------------------------------------------------------------------------------

def _check_stage(spec: ResNeXtSpec, stage, block_index) -> StagePlan:
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"expected a ResNeXtSpec, got {type(spec).__name__}")
    n = len(spec.depths)
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < n:
        raise SpecError("stage", stage, f"expected a whole number from 0 to {n - 1} "
                        f"(the spec has {n} stage{'s' if n > 1 else ''})")
    plan = stage_plans(spec)[stage]
    if (isinstance(block_index, bool) or not isinstance(block_index, int)
            or not 0 <= block_index < plan.depth):
        raise SpecError("block_index", block_index, f"expected a whole number from 0 to "
                        f"{plan.depth - 1} ({plan.name} has {plan.depth} blocks)")
    return plan


def drawn_paths(cardinality: int) -> tuple[list[int], int]:
    """The paths the block view draws (0-based) and how many the elision node stands for."""
    if cardinality <= MAX_PATHS:
        return list(range(cardinality)), 0
    return [0, 1, cardinality - 1], cardinality - 3


def draw_block(spec: ResNeXtSpec, stage: int = 0, block_index: int = 0) -> graphviz.Digraph:
    """One block of a stage in the spec's form, top to bottom, with its real numbers.

    Args:
        spec: the network; its `form` and `block` choose the drawing.
        stage: 0-based stage (paper conv{stage+2}, torchvision layer{stage+1}). Default 0.
        block_index: 0-based block within the stage. Default 0, the first block, which
            carries the stage's stride and projection shortcut; later blocks are all alike.
    """
    plan = _check_stage(spec, stage, block_index)
    b = block_geometry(spec, plan, block_index == 0)
    title = (f"{spec.name}: {plan.paper_name} ({plan.name}), block {block_index + 1} of "
             f"{plan.depth}, form ({spec.form})")
    d = _Drawing(f"block_{plan.name}_{block_index}_{spec.form}", title,
                 _block_notes(spec, b), "TB")
    # ordering=out keeps the paths, the elision and the shortcut left to right in that order
    d.node(d.graph, "input", "io", _html("input x", _shape(b.in_channels, b.size_in)),
           ordering="out")
    tail = (_dense_layers(d, spec, b) if FORMS[spec.form].merge == "dense"
            else _paths(d, spec, b))
    _residual(d, b, tail)
    return d.graph


def _block_notes(spec: ResNeXtSpec, b: BlockGeometry) -> list[str]:
    """The lines under the block view's title: what the form is, where the stride is."""
    C, bottleneck = spec.cardinality, spec.block == "bottleneck"
    if C == 1:  # one path: nothing is aggregated, split or grouped
        kind = "bottleneck" if bottleneck else "basic block"
        lines = [f"C=1: a plain ResNet {kind} of width d={b.path_width}; the three forms "
                 "coincide"]
    elif not bottleneck:
        lines = [f"Depth-2 (basic) block: C={C} two-layer paths of width d={b.path_width} "
                 "aggregate to one wide dense block,",
                 f"C*d={b.width} wide; grouping brings nothing (paper Fig. 4)"]
    elif FORMS[spec.form].merge == "sum":
        lines = [f"C={C} identical paths of width d={b.path_width}, outputs summed"]
    elif FORMS[spec.form].merge == "concat":
        lines = [f"C={C} paths of width d={b.path_width}, concatenated to C*d={b.width}, "
                 "then one 1×1"]
    else:
        lines = [f"grouped convolution: the 3×3 has groups=C={C} of d={b.path_width} channels"]
    if b.stride > 1:
        where = ("first 3×3" if not bottleneck else "3×3 (ResNet v1.5, the paper)"
                 if spec.stride_on == "3x3" else "first 1×1 (ResNet v1)")
        lines.append(f"stride {b.stride} on the {where}")
    return lines


def _unit(d: _Drawing, graph, prefix: str, k: int, conv_label: str, kind: str, out_shape: str,
          relu: bool = True) -> tuple[str, str]:
    """conv{k} -> bn{k} (-> relu{k}), the conv's output shape on its edge; returns the first
    and the last node."""
    conv = d.node(graph, f"{prefix}conv{k}", kind, conv_label)
    bn = d.node(graph, f"{prefix}bn{k}", "bn", "BN")
    d.edge(graph, conv, bn, out_shape)
    if not relu:
        return conv, bn
    act = d.node(graph, f"{prefix}relu{k}", "relu", "ReLU")
    d.edge(graph, bn, act)
    return conv, act


def _dense_layers(d: _Drawing, spec: ResNeXtSpec, b: BlockGeometry) -> str:
    """Form (c): 1x1, 3x3 with groups=C, 1x1 (the basic block: 3x3, 3x3, dense). Returns the
    last node before the addition."""
    g, w, out = d.graph, b.width, _shape(b.out_channels, b.size_out)
    mid = _shape(w, b.size_mid)
    if spec.block == "bottleneck":
        groups = spec.cardinality
        first, prev = _unit(d, g, "", 1, _conv(1, b.in_channels, w, b.stride1), "conv1x1", mid)
        conv, prev2 = _unit(d, g, "", 2, _conv(3, w, w, b.stride2, groups),
                            "gconv3x3" if groups > 1 else "conv3x3", _shape(w, b.size_out))
        d.edge(g, prev, conv)
        conv, tail = _unit(d, g, "", 3, _conv(1, w, b.out_channels), "conv1x1", out,
                           relu=False)
        d.edge(g, prev2, conv)
    else:
        first, prev = _unit(d, g, "", 1, _conv(3, b.in_channels, w, b.stride1), "conv3x3", mid)
        conv, tail = _unit(d, g, "", 2, _conv(3, w, b.out_channels), "conv3x3", out,
                           relu=False)
        d.edge(g, prev, conv)
    d.edge(g, "input", first, _shape(b.in_channels, b.size_in))
    return tail


def _paths(d: _Drawing, spec: ResNeXtSpec, b: BlockGeometry) -> str:
    """Forms (a) and (b): the drawn paths (and the elision), then the sum and its BN, or the
    concatenation and the layer after it. Returns the last node before the addition."""
    g, C, merge = d.graph, spec.cardinality, FORMS[spec.form].merge
    bottleneck = spec.block == "bottleneck"
    x, out = _shape(b.in_channels, b.size_in), _shape(b.out_channels, b.size_out)
    mid = _shape(b.path_width, b.size_mid)
    shown, elided = drawn_paths(C)
    path_nodes = 3 * (2 if bottleneck else 1) + (merge == "sum")  # conv, BN, ReLU per layer
    for i in shown:
        if i == shown[-1] and elided:
            # A column as tall as a path (a dashed line down to an end point), so that dot
            # keeps it between the paths, where the paper puts its dots.
            with g.subgraph(name="cluster_elided") as box:
                box.attr(id="cluster_elided", label="", style="invis")
                d.node(box, "paths_elided", "elision",
                       _html("⋯", f"{elided} more identical paths",
                             f"(paths {shown[-2] + 2} to {i})"), style="rounded,filled,dashed")
                d.node(box, "paths_elided_end", "elision", "", shape="point", width="0.01",
                       style="invis")
                d.edge(box, "paths_elided", "paths_elided_end", style="dashed",
                       arrowhead="none", minlen=str(path_nodes - 1))
            d.edge(g, "input", "paths_elided", style="dashed")
            d.edge(g, "paths_elided_end", merge, style="dashed")
        with g.subgraph(name=f"cluster_path{i}") as box:
            box.attr(label=f"path {i + 1}" + (f" of {C}" if i == C - 1 and C > 1 else ""),
                     id=f"cluster_path{i}", style="rounded,filled", fillcolor=CLUSTER_FILL,
                     color=BORDER, fontcolor=TEXT, fontsize="11", margin="6")
            p = f"path{i}_"
            if bottleneck:
                first, prev = _unit(d, box, p, 1, _conv(1, b.in_channels, b.path_width,
                                                        b.stride1), "conv1x1", mid)
                conv, tail = _unit(d, box, p, 2, _conv(3, b.path_width, b.path_width,
                                                       b.stride2), "conv3x3",
                                   _shape(b.path_width, b.size_out))
                d.edge(box, prev, conv)
            else:
                first, tail = _unit(d, box, p, 1, _conv(3, b.in_channels, b.path_width,
                                                        b.stride1), "conv3x3", mid)
            if merge == "sum":  # the path's own last layer, d -> out
                k, kernel = (3, 1) if bottleneck else (2, 3)
                conv = d.node(box, f"{p}conv{k}", "conv1x1" if bottleneck else "conv3x3",
                              _conv(kernel, b.path_width, b.out_channels))
                d.edge(box, tail, conv)
                tail = conv
        d.edge(g, "input", first, x)  # every path reads all of x
        d.edge(g, tail, merge, out if merge == "sum" else _shape(b.path_width, b.size_out))

    k = 3 if bottleneck else 2  # index of the block's last conv and BN
    if merge == "sum":
        d.node(g, "sum", "merge", _html("sum", f"of {C} path{'s' if C > 1 else ''}"),
               shape="ellipse")
        tail = d.node(g, f"bn{k}", "bn", _html("BN", "on the sum"))
        d.edge(g, "sum", tail, out)
        return tail
    d.node(g, "concat", "merge",
           _html("concatenate", f"{C} × {b.path_width} = {b.width} channels"))
    conv, tail = _unit(d, g, "", k, _conv(1 if bottleneck else 3, b.width, b.out_channels),
                       "conv1x1" if bottleneck else "conv3x3", out, relu=False)
    d.edge(g, "concat", conv, _shape(b.width, b.size_out))
    return tail


def _residual(d: _Drawing, b: BlockGeometry, tail: str) -> None:
    """The shortcut (identity, or 1x1 conv + BN with the stride), the addition, the ReLU."""
    g, out = d.graph, _shape(b.out_channels, b.size_out)
    d.node(g, "add", "merge", "+", shape="circle", fontsize="16", width="0.4",
           fixedsize="true")
    d.edge(g, tail, "add")
    if b.projection:
        d.node(g, "shortcut_conv", "shortcut",
               _html(f"shortcut: 1×1 conv, {b.in_channels}→{b.out_channels}",
                     f"projection, stride {b.stride}"))
        d.node(g, "shortcut_bn", "bn", "BN")
        d.edge(g, "input", "shortcut_conv", _shape(b.in_channels, b.size_in))
        d.edge(g, "shortcut_conv", "shortcut_bn", out)
        d.edge(g, "shortcut_bn", "add")
    else:
        d.edge(g, "input", "add", f"identity {out}", style="dashed")
    d.node(g, "relu", "relu", "ReLU")
    d.edge(g, "add", "relu", out)
    d.node(g, "output", "io", _html("output y", out))
    d.edge(g, "relu", "output")


# -- the network ----------------------------------------------------------------------------

def _layers(spec: ResNeXtSpec, b: BlockGeometry) -> str:
    C, merge = spec.cardinality, FORMS[spec.form].merge
    if spec.block == "basic":
        return f"3×3 {b.in_channels}→{b.width}, 3×3 {b.width}→{b.out_channels}"
    if merge == "dense":
        return (f"1×1 {b.in_channels}→{b.width}, 3×3 {b.width}→{b.width} groups={C}, "
                f"1×1 {b.width}→{b.out_channels}")
    paths = f"{C} × (1×1 {b.in_channels}→{b.path_width}, 3×3"
    if merge == "sum":
        return f"{paths}, 1×1 {b.path_width}→{b.out_channels}), summed"
    return f"{paths}), concat {b.width}, 1×1 {b.width}→{b.out_channels}"


def draw_network(spec: ResNeXtSpec) -> graphviz.Digraph:
    """Input, stem, one cluster per stage (first block, then the identical later blocks as one
    node), pooling and classifier; every cluster captioned with its numbers and counts.

    Each cluster is one row, its caption first; the flow runs along a row, then to the start
    of the next one, like text. (Captions are nodes, not cluster labels, so that the edges
    between rows never cross their text.)
    """
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"expected a ResNeXtSpec, got {type(spec).__name__}")
    counts = network_counts(spec)
    title = f"{spec.name}, form ({spec.form}), {spec.image_size}×{spec.image_size} input"
    totals = f"{counts.params:,} parameters, {_macs(counts.macs)} multiply-adds"
    d = _Drawing("network", title, [totals, FORMS[spec.form].description], "TB")
    g = d.graph
    d.node(g, "input", "io", _html("input image", _shape(spec.in_channels, spec.image_size)))
    tail, tail_shape, column = "input", "", ""

    def row(name: str, caption: list[str], nodes: list[tuple[str, str, str]],
            shapes: list[str]) -> None:
        """A cluster: a caption, then `nodes` (id, kind, label) joined left to right by
        edges labelled `shapes`; the previous row's last node feeds the first."""
        nonlocal tail, tail_shape, column
        with g.subgraph(name=f"cluster_{name}") as box, box.subgraph() as line:
            box.attr(id=f"cluster_{name}", label="", style="rounded,filled",
                     fillcolor=CLUSTER_FILL, color=BORDER, margin="10")
            line.attr(rank="same")
            info = d.node(line, f"{name}_info", "caption",
                          _html(*caption, size=12, align="left"), shape="plain", style="")
            for node_id, kind, label in nodes:
                d.node(line, node_id, kind, label)
            line.edge(info, nodes[0][0], style="invis", id=f"{info}-{nodes[0][0]}")
            for (a, *_), (b, *_), shape in zip(nodes[:-1], nodes[1:], shapes, strict=True):
                d.edge(line, a, b, shape)
        if column:  # an invisible heavy edge keeps the captions in one column
            g.edge(column, info, style="invis", weight="10", id=f"{column}-{info}")
            d.edge(g, tail, nodes[0][0], tail_shape, constraint="false")
        else:
            d.edge(g, tail, nodes[0][0])
        column, tail = info, nodes[-1][0]

    conv_size, size = stem_size(spec)
    k, s = (7, 2) if spec.stem == "imagenet" else (3, 1)
    stem = [("stem_conv", "conv", _conv(k, spec.in_channels, spec.stem_width, s)),
            ("stem_bn", "bn", "BN"), ("stem_relu", "relu", "ReLU")]
    shapes = [_shape(spec.stem_width, conv_size), ""]
    if spec.stem == "imagenet":
        stem.append(("stem_pool", "pool", _html("3×3 max-pool", "stride 2")))
        shapes.append("")
    row("stem", ["stem", f"{spec.stem} stem, {spec.image_size}→{size}",
                 f"params {counts.stem.params:,}", f"MACs {_macs(counts.stem.macs)}"],
        stem, shapes)
    tail_shape = _shape(spec.stem_width, size)

    for stage in counts.stages:
        p = stage.plan
        first, rest = block_geometry(spec, p, True), block_geometry(spec, p, False)
        shortcut = (f"1×1 projection shortcut, stride {first.stride}" if first.projection
                    else "identity shortcut")
        nodes = [(f"{p.name}_first", "block",
                  _html(f"block 1: {first.in_channels}→{first.out_channels}"
                        + (f", stride {first.stride}" if first.stride > 1 else ""),
                        _layers(spec, first), shortcut, size=12))]
        if p.depth > 1:
            blocks = "block 2" if p.depth == 2 else f"blocks 2 to {p.depth}"
            nodes.append((f"{p.name}_rest", "block",
                          _html(f"{blocks}: × {p.depth - 1} identical, "
                                f"{rest.in_channels}→{rest.out_channels}",
                                _layers(spec, rest), "identity shortcut", size=12)))
        out = _shape(p.out_channels, p.size_out)
        row(p.name, [f"{p.paper_name} ({p.name})",
                     f"{p.depth} block{'s' if p.depth > 1 else ''}, {p.out_channels}-d out",
                     f"width {p.width} ({spec.cardinality} × {p.path_width}d)",
                     f"{p.size_in}×{p.size_in} → {p.size_out}×{p.size_out}",
                     f"params {stage.total.params:,}", f"MACs {_macs(stage.total.macs)}"],
            nodes, [out] * (len(nodes) - 1))
        tail_shape = out

    features = spec.out_channels(len(spec.depths) - 1)
    row("head", ["head", f"params {counts.head.params:,}", f"MACs {_macs(counts.head.macs)}"],
        [("avgpool", "pool", _html("global average pool", f"→ {features}")),
         ("fc", "fc", _html(f"fc, {features}→{spec.num_classes}")),
         ("output", "io", _html("class scores", str(spec.num_classes)))],
        [str(features), str(spec.num_classes)])
    return g


def draw(spec: ResNeXtSpec, view: str = "block", stage: int = 0,
         block_index: int = 0) -> graphviz.Digraph:
    """draw_block or draw_network, by name ("block" or "network")."""
    if view == "block":
        return draw_block(spec, stage, block_index)
    if view == "network":
        return draw_network(spec)
    raise SpecError("view", view, "expected 'block' or 'network'")


# -- rendering ------------------------------------------------------------------------------

_SVG_TAG = re.compile(r"<svg\b[^>]*>")


def _scalable(svg: str) -> str:
    """Let CSS size the picture: keep width, height and viewBox, add max-width:100% and
    height:auto, so it shrinks to a narrow page and keeps its aspect ratio."""
    return _SVG_TAG.sub(lambda m: m.group(0)[:-1].rstrip()
                        + ' style="max-width: 100%; height: auto;">', svg, count=1)


def render(graph: graphviz.Digraph | str, fmt: str = "svg", timeout: float = DEFAULT_TIMEOUT,
           strict: bool = False) -> bytes:
    """The drawing as SVG, PNG or DOT bytes.

    "dot" returns the DOT source, encoded; "svg" and "png" run Graphviz's `dot` for at most
    `timeout` seconds. Raises GraphvizError (its `.source` is the DOT text) when `dot` is
    missing, fails or times out; with `strict`, also when it prints a warning.
    """
    source = graph if isinstance(graph, str) else graph.source
    if fmt not in FORMATS:
        raise SpecError("format", fmt, "expected one of 'svg', 'png', 'dot'")
    if fmt == "dot":
        return source.encode("utf-8")
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizError(f"cannot draw {fmt.upper()}: Graphviz's `dot` program is not on "
                            f"PATH; {INSTALL_HINT}. The DOT source is still available "
                            "(this error's .source, or render(graph, 'dot')).", source)
    args = [dot, f"-T{fmt}"] + ([f"-Gdpi={PNG_DPI}"] if fmt == "png" else [])
    try:
        done = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"Graphviz's `dot` took more than {timeout:g} s to draw {fmt.upper()} "
                            "and was stopped; the DOT source is still available.",
                            source) from None
    except OSError as exc:
        raise GraphvizError(f"cannot run Graphviz's `dot` ({dot}): {exc.strerror}; "
                            f"{INSTALL_HINT}.", source) from None
    errors = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not done.stdout or (strict and errors):
        detail = errors.splitlines()[0] if errors else f"exit status {done.returncode}"
        raise GraphvizError(f"Graphviz's `dot` failed to draw {fmt.upper()}: {detail}",
                            source)
    if fmt == "svg":
        return _scalable(done.stdout.decode("utf-8")).encode("utf-8")
    return done.stdout


def svg_text(graph: graphviz.Digraph | str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The drawing as SVG text, ready to put in a page."""
    return render(graph, "svg", timeout).decode("utf-8")


# -- command line: python -m builder graph ... -------------------------------------------
