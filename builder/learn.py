"""A short classroom walk through a ResNeXt block, with the current network's numbers.

Each step has a title, a few sentences with LaTeX formulas filled in from the spec, the block
form (and type) to draw, and the ids of the block graph's nodes it is about (builder.graph's
stable ids: `path0_conv1`, `sum`, `concat`, `conv2`, ...), which the page highlights.

    >>> from builder import PRESETS
    >>> step = lesson(PRESETS["resnext50_32x4d"], 2)
    >>> step["title"], step["highlight"][:2]
    ('One path: a small bottleneck', ['path0_conv1', 'path0_conv2'])
"""

from __future__ import annotations

import math
import re

from .graph import MAX_PATHS
from .network import figure_block, stage_plans
from .spec import ResNeXtSpec, SpecError
from .timing.breakdown import by_kind


def _n(value: int) -> str:
    """A number for LaTeX: 70144 -> 70{,}144."""
    return f"{value:,}".replace(",", "{,}")


def _paths(c: int) -> list[int]:
    """The path indices the block graph draws (the first two and the last above MAX_PATHS)."""
    return list(range(c)) if c <= MAX_PATHS else [0, 1, c - 1]


def block_index(spec: ResNeXtSpec) -> int:
    """The block of stage 1 the lesson draws: the page's default (Fig. 3's)."""
    return figure_block(spec, 0)


def _numbers(spec: ResNeXtSpec) -> dict:
    """Stage 1's numbers for the block the lesson draws (`block_index`)."""
    b = spec.replace(block="bottleneck")
    c, d, out = b.cardinality, b.path_width(0), b.out_channels(0)
    inp = out if block_index(spec) else spec.stem_width
    w = c * d
    path = inp * d + 9 * d * d + d * out
    reference_width = 64  # the ResNet bottleneck of the same stage: one path 64 wide
    reference = inp * reference_width + 9 * reference_width ** 2 + reference_width * out
    return {"C": c, "d": d, "in": inp, "out": out, "w": w, "path": path, "block": c * path,
            "reference": reference, "grouped": 9 * w * w // c, "dense": 9 * w * w}


def _cardinality_text(C: int, d: int, w: int) -> str:
    """Step 2: what C is here, then the paper's two claims, kept apart (Table 3: at a fixed
    complexity; Table 4: for added complexity)."""
    if C == 1:
        here = (f"Here $C = 1$: a single path $d = {d}$ channels wide, which is a plain ResNet "
                "bottleneck. Raise C to split it into C paths of the same shape.")
    else:
        here = (f"The number of paths is the **cardinality** $C = {C}$. All paths have the "
                f"same topology (unlike Inception's branches), each $d = {d}$ channels wide, "
                f"so the block is {C}x{d}d and its bottleneck is $C \\cdot d = {C} \\cdot "
                f"{d} = {_n(w)}$ channels wide.")
    return (f"{here}\n\nThe paper makes two claims, from two tables:\n\n"
            "- **Table 3, same complexity:** trading width for paths at equal parameters and "
            "multiply-adds (the paper's \"FLOPs\") lowers the error: ResNeXt-50 goes from "
            "23.9% (1×64d) to 22.2% (32×4d) top-1.\n"
            "- **Table 4, added complexity:** spending twice ResNet-101's complexity on more "
            "paths beats spending it on depth or width: 20.4% (64×4d) against 21.7% "
            "(ResNet-200) and 21.3% (1×100d).")


def drawn_note(spec: ResNeXtSpec, drawn: ResNeXtSpec) -> str:
    """A line saying which network a step draws where it is not the user's own: a
    basic-block network is drawn as its bottleneck version (paths need depth 3)."""
    if spec.block == drawn.block:
        return ""
    if spec.block == "basic":
        return (f"Your network, {spec.name}, has basic blocks (two 3×3 layers), whose paths "
                "merge into one dense block (step 7). This step draws its bottleneck version, "
                f"{drawn.name}, to show the paths.")
    return (f"This step draws the basic-block version of your network, {drawn.name}, to show "
            "why two-layer paths merge.")


def _steps(spec: ResNeXtSpec) -> list[dict]:
    k = _numbers(spec)
    C, d, inp, out, w = k["C"], k["d"], k["in"], k["out"], k["w"]
    paths = _paths(C)
    bottleneck = spec.replace(block="bottleneck")
    basic = spec.replace(block="basic", stride_on="3x3")
    more = ["paths_elided"] if C > MAX_PATHS else []
    return [
        {"title": "Split, transform, aggregate",
         "spec": bottleneck.replace(form="a"),
         "highlight": ["input", *[f"path{i}_conv1" for i in paths], *more, "sum"],
         "text": (
             "A neuron splits its input into pieces, scales each and sums them: "
             "$\\sum_{i=1}^{D} w_i x_i$. A ResNeXt block does the same with small networks "
             "$\\mathcal{T}_i$ in place of the scalings, and adds the input back:\n\n"
             f"$$y = x + \\sum_{{i=1}}^{{C}} \\mathcal{{T}}_i(x), \\qquad C = {C}$$\n\n"
             "Split: every path reads the whole input. Transform: each path is a small "
             "bottleneck. Aggregate: the paths' outputs are summed.")},
        {"title": "Cardinality: C paths of the same shape",
         "spec": bottleneck.replace(form="a"),
         "highlight": [f"cluster_path{i}" for i in paths] + more,
         "text": _cardinality_text(C, d, w)},
        {"title": "One path: a small bottleneck",
         "spec": bottleneck.replace(form="a"),
         "highlight": ["path0_conv1", "path0_conv2", "path0_conv3"],
         "text": (
             f"One path is $1{{\\times}}1$, {inp}$\\to${d}; $3{{\\times}}3$, {d}$\\to${d}; "
             f"$1{{\\times}}1$, {d}$\\to${out}. Its weights, and the block's:\n\n"
             f"$$\\text{{in}}\\cdot d + 9 d^2 + d\\cdot\\text{{out}}$$\n\n"
             f"$$= {inp}\\cdot{d} + 9\\cdot{d}^2 + {d}\\cdot{out} = {_n(k['path'])}$$\n\n"
             f"$$C\\cdot({_n(k['path'])}) = {C}\\cdot{_n(k['path'])} = {_n(k['block'])}$$\n\n"
             f"The ResNet bottleneck of this stage (one path, 64 wide) has "
             f"${inp}\\cdot 64 + 9\\cdot 64^2 + 64\\cdot{out} = {_n(k['reference'])}$.")},
        {"title": "Aggregate: sum, then BN",
         "spec": bottleneck.replace(form="a"),
         "highlight": ["sum", "bn3", "add", "relu"],
         "text": (
             "The paths' outputs are summed; one BN acts on the sum, the shortcut is added, "
             "then the last ReLU:\n\n"
             "$$y = \\sigma\\Big(x + \\mathrm{BN}\\big(\\sum_{i=1}^{C} "
             "\\mathcal{T}_i(x)\\big)\\Big)$$")},
        {"title": "Form (b): concatenate early",
         "spec": bottleneck.replace(form="b"),
         "highlight": ["concat", "conv3"],
         "text": (
             "Each path ends in a $1{\\times}1$ conv. A $1{\\times}1$ conv on a "
             "concatenation is the sum of $1{\\times}1$ convs on its slices:\n\n"
             "$$\\sum_{i=1}^{C} W_i z_i = \\begin{bmatrix} W_1 & \\cdots & W_C \\end{bmatrix}"
             "\\begin{bmatrix} z_1 \\\\ \\vdots \\\\ z_C \\end{bmatrix}$$\n\n"
             f"so the {C} last layers merge into one $1{{\\times}}1$, {_n(w)}$\\to${out} "
             f"after concatenating the {C} paths ({C} $\\times$ {d} = {_n(w)} channels).")},
        {"title": "Form (c): grouped convolution",
         "spec": bottleneck.replace(form="c"),
         "highlight": ["conv1", "conv2", "conv3"],
         "text": (
             f"The first layers share their input: {C} convs $1{{\\times}}1$, "
             f"{inp}$\\to${d} are one conv {inp}$\\to${_n(w)}. The {C} separate "
             f"$3{{\\times}}3$ convs are one **grouped** conv with $g = C = {C}$ groups. "
             "A grouped conv has $k^2 \\, C_\\text{in} C_\\text{out} / g$ weights:\n\n"
             f"$$\\frac{{9 \\cdot {_n(w)} \\cdot {_n(w)}}}{{{C}}} = {_n(k['grouped'])} "
             f"\\quad\\text{{instead of}}\\quad 9 \\cdot {_n(w)}^2 = {_n(k['dense'])}$$\n\n"
             "Only the middle $3{\\times}3$ is truly split. Same function as (a) and (b); "
             "this is the fast form.")},
        {"title": "Why depth-2 blocks collapse",
         "spec": basic.replace(form="a"),
         "highlight": ["path0_conv1", "path0_conv2", "sum"],
         "text": (
             "With two layers per path (the basic block of ResNet-18/34), the first layers "
             "share the input and the last layers share the output, so both merge:\n\n"
             "$$\\sum_{i=1}^{C} W^{(2)}_i\\, \\sigma\\big(W^{(1)}_i x\\big) = W^{(2)} "
             "\\sigma\\big(W^{(1)} x\\big)$$\n\n"
             "with the paths' weights stacked:\n\n"
             "$$W^{(1)} = \\begin{bmatrix} W^{(1)}_1 \\\\ \\vdots \\\\ W^{(1)}_C "
             "\\end{bmatrix}, \\quad W^{(2)} = \\begin{bmatrix} W^{(2)}_1 & \\cdots & "
             "W^{(2)}_C \\end{bmatrix}$$\n\n"
             f"The result is one dense block $C \\cdot d = {_n(basic.width(0))}$ wide: grouping "
             "brings nothing (paper Fig. 4). Cardinality needs depth 3 or more.")},
        {"title": "The shortcut",
         "spec": bottleneck.replace(form="c"),
         "highlight": ["input", "shortcut_conv", "shortcut_bn", "add", "relu", "output"],
         "text": (
             "The block adds its input back: $y = \\sigma(x + \\mathcal{F}(x))$. Where the "
             "shape changes (the first block of a stage), the shortcut is a $1{\\times}1$ "
             "conv + BN projection; elsewhere it is the identity.")},
    ]


STEP_COUNT = 8  # the walk through the block; equal_flops_step (after a profile) is extra


def equal_flops_step(spec: ResNeXtSpec, result=None) -> dict:
    """The step "Equal FLOPs, different speed": a grouped 3x3 does 1/C of a dense 3x3's
    work on the same bytes, so its arithmetic intensity is about 1/C of the dense one's, and
    form (a) launches about C times the kernels of form (c). With `result` (a
    builder.timing.ProfileResult) it shows this network's measured numbers; without, it says
    that no profile has run yet. Same keys as `lesson`'s step."""
    k = _numbers(spec)
    C, w = k["C"], k["w"]
    size = stage_plans(spec)[0].size_out  # conv2's size (56x56 at 224): per image
    if C == 1:
        text = ("Here $C = 1$: this network is a ResNet. Its $3{\\times}3$ is dense and the "
                "three forms are the same layers, one path, so they run alike. Raise the "
                "cardinality at the same complexity (the keep-complexity box) to see the "
                "grouped $3{\\times}3$ lose arithmetic intensity and form (a) launch C times "
                "the kernels.\n\n")
    else:
        moved = 4 * 2 * w * size * size  # fp32 input + output
        grouped = 2 * 9 * w * (w // C) * size * size / (moved + 4 * 9 * w * w // C)
        dense = 2 * 9 * w * w * size * size / (moved + 4 * 9 * w * w)
        text = (
            f"Form (c)'s grouped $3{{\\times}}3$ does $1/C = 1/{C}$ of the multiply-adds of "
            f"a dense $3{{\\times}}3$ of the same width ({_n(w)}) on the same activations, so "
            f"its arithmetic intensity (FLOP per byte moved) is {dense / grouped:.3g} times "
            f"lower: {grouped:.3g} against {dense:.3g} FLOP/byte per image at {size}x{size} in "
            f"fp32, weights read once (at most {C} times, where the activations are most of "
            "the bytes). Low intensity means the layer waits on memory, not "
            "arithmetic (the roofline's sloped roof). Form (a) runs the same multiply-adds as "
            f"{C} paths of small convolutions: about {C} times the kernels, each too small to "
            "fill the machine.\n\n")
    if result is None:
        text += ("No profile has run yet: run one (the Profile view, or `python -m builder "
                 "profile --forms`) to see this network's measured numbers here.")
    else:
        text += _measured(result)
    return {"index": STEP_COUNT, "count": STEP_COUNT + 1, "title": "Equal FLOPs, different speed",
            "text": text, "spec": spec.replace(block="bottleneck", form="c"),
            "highlight": ["conv2"], "block_index": block_index(spec)}


def _measured(result) -> str:
    """The profile's numbers: per form the step time, operator calls and kernels; the
    grouped 3x3's and a 1x1's intensity and TFLOP/s."""
    lines = [f"Measured ({result.device_name}, batch {result.batch_size}):\n"]
    for form, p in result.forms.items():
        lines.append(f"- form ({form}): {p.total_ms:.3g} ms, {p.op_calls:,} operator calls, "
                     f"{p.kernels:,} kernels")
    threes = {form: next((k for k in by_kind(p) if k.kind == "conv 3x3"), None)
              for form, p in result.forms.items()}
    if threes.get("a") and threes.get("c"):
        a, c = threes["a"], threes["c"]
        lines.append(f"- the same 3x3 multiply-adds: {a.self_ms:.3g} ms in {a.calls:,} calls "
                     f"in form (a), {c.self_ms:.3g} ms in {c.calls:,} grouped call"
                     f"{'s' if c.calls > 1 else ''} in form (c)")
    main = result.main.layers
    grouped = [r for r in main if r.kind == "Conv2d" and (r.groups or 1) > 1]
    dense = [r for r in main if r.kind == "Conv2d" and r.groups == 1 and r.intensity]
    if grouped and dense:
        g = max(grouped, key=lambda r: r.self_ms)
        d = max(dense, key=lambda r: r.self_ms)
        lines.append(f"- {g.name} (groups={g.groups}): {g.intensity:.3g} FLOP/byte, "
                     f"{g.tflops or 0:.3g} TFLOP/s; {d.name}: {d.intensity:.3g} FLOP/byte, "
                     f"{d.tflops or 0:.3g} TFLOP/s")
    return "\n".join(lines)


def _whole(step, count: int) -> int:
    """`step` as an int: a whole number (an int, or a float such as 2.0 that is one), else a
    SpecError naming the range. Not a bool, a string, NaN or an infinity."""
    if isinstance(step, float) and math.isfinite(step) and step.is_integer():
        return int(step)
    if isinstance(step, bool) or not isinstance(step, int):
        raise SpecError("step", step, f"expected a whole number from 0 to {count - 1}")
    return step


def lesson(spec: ResNeXtSpec, step: int) -> dict:
    """Step `step` (0-based; a whole number, clamped to the range) with this spec's numbers:
    title, text (Markdown with LaTeX), the spec to draw (stage 0, block `block_index`) and the
    node ids to highlight. SpecError("step") for anything but a whole number."""
    steps = _steps(spec)
    step = min(max(_whole(step, len(steps)), 0), len(steps) - 1)
    item = steps[step]
    # the shortcut step draws the first block, whose shortcut is a projection
    index = 0 if "shortcut_conv" in item["highlight"] else block_index(spec)
    return {"index": step, "count": len(steps), "title": item["title"],
            "text": item["text"], "spec": item["spec"], "highlight": item["highlight"],
            "block_index": index}


def highlight_svg(svg: str, ids: list[str]) -> str:
    """Add the class `highlight` to the SVG groups (nodes, clusters) with these ids."""
    wanted = set(ids)

    def mark(match: re.Match) -> str:
        if match.group(1) not in wanted:
            return match.group(0)
        return f'<g id="{match.group(1)}" class="{match.group(2)} highlight">'

    return re.sub(r'<g id="([^"]+)" class="([^"]*)">', mark, svg)
