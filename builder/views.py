"""What the app shows, as plain text: numbers formatted, tables as rows, the per-block formula
with the numbers filled in, and the heavy views (graphs, summary, source) cached per spec.

No Gradio here: the ui package turns these strings and rows into components. Everything is a pure
function of a frozen (hashable) ResNeXtSpec, so `functools.lru_cache` keyed on the spec makes
a repeated view free: switching back to a configuration, or to a tab, costs nothing.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .complexity import NetworkCounts, network_counts
from .network import block_geometry, describe, figure_block, stage_plans
from .registry import FORMS
from .share import AUTO_BASELINE
from .spec import FIELDS, LIMITS, PRESETS, ResNeXtSpec, SpecError

DEFAULT_BASELINE = AUTO_BASELINE  # the spec's own template with one 64-d path
AUTO_LABEL = "its C = 1 counterpart"
# the baseline control's choices: (label, value)
BASELINE_CHOICES = [(f"auto: {AUTO_LABEL}", AUTO_BASELINE), *((n, n) for n in PRESETS)]
STAGE_HEADERS = ["stage", "blocks", "in", "width C×d", "d", "out", "size", "params",
                 "multiply-adds", "% params"]


# -- numbers --------------------------------------------------------------------------------

def fmt_int(n: int) -> str:
    """25028904 -> '25,028,904'."""
    return f"{n:,}"


def fmt_si(n: float, digits: int = 2) -> str:
    """4230000000 -> '4.23 G'; below a thousand, the number itself."""
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return f"{n:g}"


def fmt_bytes(n: float) -> str:
    """Bytes in MB (10^6, as torchinfo prints them), or kB below 0.1 MB."""
    return f"{n / 1e6:,.2f} MB" if n >= 1e5 else f"{n / 1e3:,.1f} kB"


def fmt_delta(value: int, base: int, si: bool = False) -> str:
    """The change from `base` to `value`: '-528,128 (-2.07%)' or '+141.6 M (+3.46%)'."""
    diff = value - base
    if diff == 0:
        return "same"
    text = fmt_si(abs(diff)) if si else fmt_int(abs(diff))
    sign = "+" if diff > 0 else "−"
    return f"{sign}{text} ({sign}{abs(diff) / base * 100:.2f}%)" if base else f"{sign}{text}"


# -- parsing control values ---------------------------------------------------------------

DEPTHS_HINT = "e.g. 3, 4, 6, 3"


def parse_depths(text) -> tuple[int, ...]:
    """'3, 4, 6, 3' -> (3, 4, 6, 3). One trailing comma (the user is typing the next stage)
    is skipped; an empty stage in between ('3,4,,6'), more than MAX_STAGES stages or
    anything that is not a whole number raises SpecError naming `depths`."""
    if isinstance(text, (list, tuple)):
        return ResNeXtSpec(depths=tuple(text)).depths
    if not isinstance(text, str) or len(text) > 4096:
        raise SpecError("depths", text, f"expected whole numbers separated by commas, "
                        f"{DEPTHS_HINT}")
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and not parts[-1]:
        parts = parts[:-1]
    most = LIMITS["stages"][1]
    if len(parts) > most:
        raise SpecError("depths", text, f"expected at most {most} stages (this has "
                        f"{len(parts)})")
    for i, part in enumerate(parts):
        if not part and len(parts) > 1:
            raise SpecError("depths", text, f"stage {i + 1} is empty; expected a number of "
                            f"blocks for every stage, {DEPTHS_HINT}")
    if not parts[0] or not all(re.fullmatch(r"[0-9]{1,6}", p) for p in parts):
        raise SpecError("depths", text, f"expected whole numbers separated by commas, "
                        f"{DEPTHS_HINT}")
    return tuple(int(p) for p in parts)


def format_depths(depths) -> str:
    return ", ".join(str(d) for d in depths)


def add_stage(depths: tuple[int, ...]) -> tuple[int, ...]:
    """One more stage, as deep as the last one (capped by the spec's limit on stages)."""
    most = LIMITS["stages"][1]
    if len(depths) >= most:
        raise SpecError("depths", tuple(depths), f"cannot add a stage: the limit is {most} "
                        "stages")
    return tuple(depths) + (depths[-1] if depths else 2,)


def remove_stage(depths: tuple[int, ...]) -> tuple[int, ...]:
    if len(depths) <= LIMITS["stages"][0]:
        raise SpecError("depths", tuple(depths), "cannot remove the only stage: a network "
                        "needs at least one")
    return tuple(depths)[:-1]


# -- messages in the user's terms -------------------------------------------------------------

_OTHER_LABELS = {"config": "Config", "preset": "Preset", "baseline": "Baseline",
                 "stage": "Stage shown", "block_index": "Block shown", "batch_size": "Batch"}


def field_of(exc: SpecError) -> str | None:
    """The spec field a SpecError is about ('depths[2]' -> 'depths'), or None."""
    name = str(exc.field).split("[", 1)[0]
    return name if name in FIELDS else None


def label_of(name: str) -> str:
    """A field's label as the page shows it: 'depths[2]' -> 'Blocks per stage (stage 3)'."""
    base, _, index = str(name).partition("[")
    if base in FIELDS:
        label = FIELDS[base].label
        return f"{label} (stage {int(index.rstrip(']')) + 1})" if index else label
    return _OTHER_LABELS.get(base, base)


def show_value(value) -> str:
    """A value as a user typed it, never as Python writes it: None and '' -> 'empty',
    (3, 4, 6) -> '3, 4, 6', 'abc' -> “abc”, long ones cut with an ellipsis."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "empty"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        text = ", ".join(show_value(v) for v in value[:12]) + (", …" if len(value) > 12 else "")
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str):
        inner = value.strip()
        return f"“{inner}”" if len(inner) <= 50 else f"“{inner[:49]}…”"
    else:
        try:
            text = str(value)
        except ValueError:  # an int of over 4300 digits
            text = "a very long number"
    return text if len(text) <= 60 else text[:59] + "…"


def user_message(exc: SpecError) -> str:
    """A SpecError in the page's words: the control's label, the value as typed, what is
    allowed. 'cardinality: None' -> 'Cardinality C: empty; expected a whole number from 1 to
    4096'."""
    label, shown = label_of(exc.field), show_value(exc.value)
    allowed = str(exc.allowed)
    if shown == "empty":
        return f"{label}: empty; {allowed}"
    if allowed.startswith("expected"):
        return f"{label}: {shown} is not allowed; {allowed}"
    return f"{label}: {shown} — {allowed}"


def stage_choices(spec: ResNeXtSpec) -> list[tuple[str, int]]:
    """(label, 0-based index) of every stage, labelled as the paper and torchvision do."""
    return [(f"conv{i + 2} (layer{i + 1})", i) for i in range(len(spec.depths))]


def block_choices(spec: ResNeXtSpec, stage: int) -> list[tuple[str, int]]:
    """(label, 0-based index) of every block of a stage: what each one takes and gives."""
    plan = stage_plans(spec)[stage]
    out = []
    for j in range(plan.depth):
        b = block_geometry(spec, plan, j == 0)
        label = (f"block {j + 1} of {plan.depth}: {b.in_channels}→{b.out_channels}"
                 + (f", stride {b.stride}" if b.stride > 1 else "")
                 + (", projection" if b.projection else ", identity")
                 + (" (as Fig. 3)" if j == 1 else ""))
        out.append((label, j))
    return out


def clamp_block(spec: ResNeXtSpec, stage: int, block_index) -> int:
    """The block asked for within the stage (its last where past the end); None or empty:
    the stage's default (`figure_block`)."""
    if block_index in (None, ""):
        return figure_block(spec, stage)
    if isinstance(block_index, float) and block_index.is_integer():
        block_index = int(block_index)
    if isinstance(block_index, bool) or not isinstance(block_index, int) or block_index < 0:
        raise SpecError("block_index", block_index, "expected a block of the stage: a whole "
                        "number from 0")
    return min(block_index, spec.depths[stage] - 1)


# -- the overview ---------------------------------------------------------------------------

@lru_cache(maxsize=512)
def counts(spec: ResNeXtSpec) -> NetworkCounts:
    return network_counts(spec)


def template_baseline(spec: ResNeXtSpec) -> ResNeXtSpec:
    """The spec's own template with one path of the paper's base width, 64-d (form (c)): the
    baseline the paper sets each ResNeXt against. ResNeXt-50 (32x4d)'s is ResNet-50,
    ResNeXt-101's ResNet-101, and a CIFAR ResNeXt-29's the CIFAR ResNet-29 (1x64d), so that
    a CIFAR spec is never compared with an ImageNet network."""
    return spec.replace(cardinality=1, width_per_group=64, form="c", zero_init_residual=False)


def baseline_spec(name: str, spec: ResNeXtSpec) -> ResNeXtSpec:
    """The baseline: "auto" (template_baseline), or a preset at the spec's image size (so
    multiply-adds compare like for like)."""
    if name == AUTO_BASELINE:
        return template_baseline(spec)
    if name not in PRESETS:
        raise SpecError("baseline", name, f"expected {AUTO_BASELINE} or one of "
                        f"{', '.join(PRESETS)}")
    return PRESETS[name].replace(image_size=spec.image_size)


def baseline_label(name: str, spec: ResNeXtSpec) -> str:
    """'ResNet-29 (its C = 1 counterpart)' or 'ResNet-50 (resnet50)'."""
    return f"{baseline_spec(name, spec).name} ({AUTO_LABEL if name == AUTO_BASELINE else name})"


def flops_note(macs: int) -> str:
    """Beside every FLOPs figure: the paper counts one multiply-add as one FLOP, and its
    figure in that convention ('... 4.2 × 10⁹')."""
    from .paper import paper_flops

    return (f"= 2 × {fmt_si(macs)} multiply-adds; the paper counts one multiply-add as one "
            f"FLOP: {paper_flops(macs)} in its Table 1's terms")


def headline(spec: ResNeXtSpec) -> str:
    """One line: name, parameters, multiply-adds, FLOPs (and the paper's FLOPs beside)."""
    c = counts(spec).total
    return (f"**{spec.name}**, form ({spec.form}) · **{fmt_int(c.params)}** parameters · "
            f"**{fmt_si(c.macs)}** multiply-adds · **{fmt_si(c.flops)}** FLOPs "
            f"({flops_note(c.macs)}) at {spec.image_size}×{spec.image_size}")


def overview_markdown(spec: ResNeXtSpec, baseline: str = DEFAULT_BASELINE) -> str:
    """Totals against the baseline, then the notes that `describe` gives."""
    from .paper import paper_flops

    base = baseline_spec(baseline, spec)
    mine, theirs = counts(spec).total, counts(base).total
    rows = [
        ("parameters", fmt_int(mine.params), fmt_int(theirs.params),
         fmt_delta(mine.params, theirs.params)),
        ("multiply-adds", f"{fmt_si(mine.macs)} ({fmt_int(mine.macs)})", fmt_si(theirs.macs),
         fmt_delta(mine.macs, theirs.macs, si=True)),
        ("FLOPs = 2 × multiply-adds", fmt_si(mine.flops), fmt_si(theirs.flops),
         fmt_delta(mine.flops, theirs.flops, si=True)),
        ("the paper's \"FLOPs\" (= multiply-adds, Table 1)", paper_flops(mine.macs),
         paper_flops(theirs.macs), fmt_delta(mine.macs, theirs.macs, si=True)),
    ]
    lines = [f"### {spec.name}, form ({spec.form})",
             f"{FORMS[spec.form].description}. "
             f"Input {spec.in_channels}×{spec.image_size}×"
             f"{spec.image_size}, {spec.num_classes} classes.", "",
             f"| | this network | baseline: {baseline_label(baseline, spec)} | change |",
             "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {a} | {b} | {d} |" for name, a, b, d in rows]
    notes = describe(spec)[1:]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def stage_table(spec: ResNeXtSpec) -> dict:
    """The per-stage table as {"headers": [...], "data": [[...], ...]}: stem, each stage,
    head, total. Numbers are formatted strings, so they read the same everywhere."""
    c = counts(spec)
    total = c.total.params or 1

    def pct(n: int) -> str:
        return f"{n / total * 100:.1f}%"

    first = c.stages[0].plan
    data = [["stem", "", str(spec.in_channels), "", "", str(spec.stem_width),
             f"{spec.image_size}→{first.size_in}", fmt_int(c.stem.params),
             fmt_int(c.stem.macs), pct(c.stem.params)]]
    for stage in c.stages:
        p = stage.plan
        data.append([f"{p.paper_name} ({p.name})", str(p.depth), str(p.in_channels),
                     str(p.width), str(p.path_width), str(p.out_channels),
                     f"{p.size_in}→{p.size_out}", fmt_int(stage.total.params),
                     fmt_int(stage.total.macs), pct(stage.total.params)])
    data.append(["head (pool, fc)", "", str(c.stages[-1].plan.out_channels), "", "",
                 str(spec.num_classes), "1", fmt_int(c.head.params), fmt_int(c.head.macs),
                 pct(c.head.params)])
    data.append(["total", str(sum(spec.depths)), "", "", "", "", "", fmt_int(c.params),
                 fmt_int(c.macs), "100.0%"])
    return {"headers": list(STAGE_HEADERS), "data": data}


def block_formula(spec: ResNeXtSpec, stage: int, first: bool = False) -> tuple[str, int]:
    """The paper's per-block weight count (BN and projection shortcut left out), with this
    stage's numbers: ('32 × (256×4 + 9×4² + 4×256) = 32 × 2,192', 70144).

    Bottleneck: C × (in·d + 9·d² + d·out). Basic block (two 3×3 layers): C × (9·in·d + 9·d·out).
    """
    plan = counts(spec).stages[stage].plan
    C, d, out = spec.cardinality, plan.path_width, plan.out_channels
    inp = plan.in_channels if first else out
    if spec.block == "bottleneck":
        inner = inp * d + 9 * d * d + d * out
        text = f"{C} × ({inp}×{d} + 9×{d}² + {d}×{out}) = {C} × {fmt_int(inner)}"
    else:
        inner = 9 * inp * d + 9 * d * out
        text = f"{C} × (9×{inp}×{d} + 9×{d}×{out}) = {C} × {fmt_int(inner)}"
    return text, C * inner


def formula_markdown(spec: ResNeXtSpec, baseline: str = DEFAULT_BASELINE) -> str:
    """The per-block formula, then one line per stage with the numbers filled in, and the
    baseline's block of the same stage for comparison where it has that stage."""
    bottleneck = spec.block == "bottleneck"
    general = ("C × (in·d + 9·d² + d·out)" if bottleneck else "C × (9·in·d + 9·d·out)")
    kind = ("bottleneck: 1×1 in→d, 3×3 d→d, 1×1 d→out per path" if bottleneck
            else "basic block: 3×3 in→d, 3×3 d→out per path")
    base = baseline_spec(baseline, spec)
    lines = [f"**Weights of one block** ({kind}; BN and the projection shortcut left out):",
             "", f"`{general}`", "",
             "| block | C × (…) with this network's numbers | weights | "
             f"{base.name}, same block |", "| --- | --- | ---: | ---: |"]
    base_stages = len(base.depths)
    for i in range(len(spec.depths)):
        name = f"conv{i + 2}"
        for first in ((True, False) if i == 0 else (False,)):
            text, value = block_formula(spec, i, first)
            label = f"{name}, first block" if first else f"{name}, later blocks"
            if i < base_stages and base.block == spec.block:
                _, ref = block_formula(base, i, first)
                ref_text = fmt_int(ref)
            else:
                ref_text = "–"
            lines.append(f"| {label} | `{text}` | {fmt_int(value)} | {ref_text} |")
    return "\n".join(lines)


# -- the heavy views, cached per spec ------------------------------------------------------

@lru_cache(maxsize=128)
def block_dot(spec: ResNeXtSpec, stage: int = 0, block_index: int = 0) -> str:
    from .graph import draw_block

    return draw_block(spec, stage, block_index).source


@lru_cache(maxsize=64)
def network_dot(spec: ResNeXtSpec) -> str:
    from .graph import draw_network

    return draw_network(spec).source


@lru_cache(maxsize=128)
def block_svg(spec: ResNeXtSpec, stage: int = 0, block_index: int = 0) -> str:
    from .graph import svg_text

    return svg_text(block_dot(spec, stage, block_index))


@lru_cache(maxsize=64)
def network_svg(spec: ResNeXtSpec) -> str:
    from .graph import svg_text

    return svg_text(network_dot(spec))


@lru_cache(maxsize=32)
def graph_png(dot_source: str) -> bytes:
    from .graph import render

    return render(dot_source, "png")


_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)


# The buttons over every drawing; ui.page's GRAPH_JS acts on them (`data-graph`), on the
# wheel (full screen, or with Ctrl) and on drags and pinches.
GRAPH_TOOLS = (("fullscreen", "Full screen", "Full screen (Esc leaves it)"),
               ("in", "+", "Zoom in"), ("out", "−", "Zoom out"), ("fit", "Fit", "Whole drawing"))


def _tools() -> str:
    buttons = "".join(f'<button type="button" data-graph="{action}" title="{tip}" '
                      f'aria-label="{tip}">{label}</button>' for action, label, tip in GRAPH_TOOLS)
    return f'<div class="graph-tools" role="toolbar" aria-label="drawing">{buttons}</div>'


def _svg_body(svg: str) -> str:
    return _PROLOG.sub("", svg, count=1)


def svg_html(svg: str, title: str) -> str:
    """Inline SVG for a page: the XML prolog and DOCTYPE dropped (invalid inside HTML), in a
    figure with an accessible title and the drawing's tools (full screen, zoom, fit). The SVG
    keeps its node ids (`g#path0_conv1`)."""
    return (f'<figure class="graph-view graph-zoomable" aria-label="{_attr(title)}">'
            f"{_tools()}{_svg_body(svg)}</figure>")


def svgs_html(drawings: list[tuple[str, str]], title: str) -> str:
    """Several drawings side by side ([(svg, caption)]), with one set of tools for all: full
    screen shows them all; zoom acts on each."""
    figures = "".join(f'<figure class="graph-view" aria-label="{_attr(caption)}">'
                      f"<figcaption>{_attr(caption)}</figcaption>{_svg_body(svg)}</figure>"
                      for svg, caption in drawings)
    return (f'<section class="graph-set graph-zoomable" aria-label="{_attr(title)}">'
            f'{_tools()}<div class="graph-row">{figures}</div></section>')


def _attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


@lru_cache(maxsize=32)
def summary(spec: ResNeXtSpec, depth: int = 3):
    """torchinfo's summary on the meta device; a spec too big to build raises
    ResourceLimitError (a SpecError) first."""
    from .guards import check
    from .summary import summarize

    check(spec)
    return summarize(spec, depth=depth)


def summary_text(result) -> str:
    """torchinfo's rows as a text table with the groups column torchinfo lacks."""
    from .summary import rows_table

    return rows_table(result)


def summary_totals(result) -> str:
    """The totals under torchinfo's table, as Markdown."""
    rows = [("total parameters", fmt_int(result.total_params)),
            ("trainable parameters", fmt_int(result.trainable_params)),
            ("multiply-adds", f"{fmt_si(result.macs)} ({fmt_int(result.macs)})"),
            ("input size", fmt_bytes(result.input_bytes)),
            ("forward/backward pass size", fmt_bytes(result.forward_backward_bytes)),
            ("parameter size", fmt_bytes(result.params_bytes)),
            ("estimated total", fmt_bytes(result.input_bytes + result.forward_backward_bytes
                                          + result.params_bytes))]
    # the first row is the header: an empty one would show as a blank bar above the table
    lines = [f"| {a} | {b} |" for a, b in rows]
    return "\n".join([lines[0], "| --- | ---: |"] + lines[1:])


@lru_cache(maxsize=32)
def source(spec: ResNeXtSpec) -> str:
    from .export import export_source

    return export_source(spec)


# -- timing and the equivalence proof (results come from builder.timing / builder.proof) ----

# what a reader compares first (time, speed, share of the peak) comes first: at 1440 px the
# spread, memory, device and settings may scroll, the figures do not
TIMING_HEADERS = ["#", "network", "median ms", "img/s", "TFLOP/s", "% of peak",
                  "spread ms (IQR; min–max)", "peak memory", "device", "settings"]
PROOF_HEADERS = ["form", "vs", "dtype", "BN mode", "max |difference|", "relative", "bound",
                 "equal"]


def timing_settings(result) -> str:
    """Every setting of a run, in one line: 'batch 2, 16×16, inference, fp32, eager,
    2 warm-up + 10 iterations, seed 0, 2 threads, time.perf_counter'."""
    from .timing import variant_text

    s = result.settings
    parts = [f"batch {result.batch_size}", f"{result.image_size}×{result.image_size}",
             s["mode"], s["dtype"] + (f" (autocast {s['autocast']})" if s.get("autocast")
                                      else ""), variant_text(s),
             f"{s['warmup']} warm-up + {s['iters']} iterations", f"seed {s['seed']}"]
    if result.device_type == "cpu":
        parts.append(f"{s['threads']} threads")
    if s.get("cudnn_benchmark") is not None:
        parts.append(f"cudnn.benchmark {'on' if s['cudnn_benchmark'] else 'off'}")
    if s.get("optimizer"):
        parts.append(s["optimizer"] + (" + GradScaler" if s.get("grad_scaler") else ""))
    parts.append(s["timer"])
    return ", ".join(parts)


def timing_row(number: int, result) -> list[str]:
    def opt(value, fmt):
        return "–" if value is None else format(value, fmt)

    memory = ("– (CPU: not tracked)" if result.peak_memory_bytes is None
              else fmt_bytes(result.peak_memory_bytes))
    return [str(number), result.name, f"{result.median_ms:,.2f}",
            f"{result.images_per_s:,.1f}", opt(result.tflops, ".3g"),
            opt(result.peak_percent, ".1f"),
            f"{result.iqr_ms:,.2f}; {result.min_ms:,.2f}–{result.max_ms:,.2f}"
            + (" (noisy)" if result.noisy else "")
            + (" (contended)" if result.contended else ""),
            memory, result.device_label, timing_settings(result)]


def timing_columns(results) -> str:
    """What the derived columns mean, with this run's peak: one paragraph under the table."""
    peaks = sorted({(r.settings["dtype"], r.peak_tflops) for r in results
                    if r.peak_tflops is not None})
    measured = "; ".join(f"{tflops:.3g} TFLOP/s in {dtype}" for dtype, tflops in peaks)
    return ("**Columns.** *median ms*: one batch, the median of the timed iterations. "
            "*img/s*: batch ÷ median. *TFLOP/s*: 2 × multiply-adds × batch (× 3 for a "
            "training step: forward and two backward products) ÷ median. *% of peak*: that, as "
            "a share of this device's matmul peak in the same dtype"
            + (f" ({measured}, measured here" if measured else " (measured")
            + ": the best of large matrix products, and on the CPU of a 1×1 convolution). A "
            "dense product is the most a device does per second; convolutions reach less, "
            "grouped ones (form (c)) much less, since each of their weights meets fewer inputs "
            "(see the Profile's roofline).")


def forms_lesson(results) -> str:
    """'Equal in math, not in speed' with the measured numbers of every form, each with its
    lesson from the registry (empty until every registered form has a time)."""
    times = {r.form: r.median_ms for r in results if r.form in FORMS}
    if set(times) != set(FORMS) or not times.get("c"):
        return ""
    first, *rest = FORMS
    parts = ", ".join([f"Form ({first}) took {times[first]:,.2f} ms"]
                      + [f"({key}) {times[key]:,.2f} ms" for key in rest])
    lessons = " ".join(f"({key}) {form.lesson}" for key, form in FORMS.items())
    return (f"**Equal in math, not in speed.** {parts} per batch: form (c), one grouped "
            f"convolution, is {times['a'] / times['c']:,.1f}× as fast as form (a)'s C separate "
            "paths. This is why grouped convolution is the form people ship.\n\n"
            f"Where the time goes: {lessons}")


def timing_chart(results) -> str:
    from .charts import COLORS, bars_svg

    rows = [(r.name.replace("ResNeXt", "RX"), r.median_ms, f"{r.median_ms:,.2f} ms")
            for r in results]
    return bars_svg("median time per batch (ms, lower is faster)", rows, COLORS[4])


def proof_table(proof) -> dict:
    data = [[f"({r['form']})", f"({r['from']})", r["dtype"], r["mode"],
             f"{r['max_abs_diff']:.2e}", f"{r['rel_error']:.2e}",
             f"{r['bound_kind']} ≤ {r['bound']:.2e}", "yes" if r["ok"] else "NO"]
            for r in proof.rows]
    return {"headers": list(PROOF_HEADERS), "data": data}


def proof_markdown(proof) -> str:
    what = ("the whole network" if proof.scope == "network" else
            f"one later block of conv{proof.stage + 2} (stride 1, in = out channels)")
    verdict = ("**Forms (a), (b) and (c) compute the same function**: every difference is "
               "float rounding, within its bound." if proof.ok else
               "**Some differences exceed their bound.**")
    worst = {}
    for r in proof.rows:
        worst[r["dtype"]] = max(worst.get(r["dtype"], 0.0), r["max_abs_diff"])
    worst_text = ", ".join(f"{d}: {v:.1e}" for d, v in worst.items())
    return (f"{verdict} {proof.spec.name}, {what}: the weights of form ({proof.spec.form}) "
            f"converted to the other forms, one random batch of {proof.batch_size}; largest "
            f"|difference| {worst_text}. Proof took {proof.seconds:.1f} s.")


def whole(value, name: str) -> int:
    """A Number control's value as a whole number, or SpecError naming the control."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(name, value, "expected a whole number of 1 or more")
    return value
