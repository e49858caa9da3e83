"""The paper's results (Xie et al. 2017, Tables 3, 4 and 7; /work/shared/RESNEXT.md), each row
with the architecture it reports, so that any configuration is matched to the rows of the
network it is, whatever it is called; and the paper's Table 1 for any spec.

A row is matched by the spec the paper trained: C, d, depths, block, stem, stride, the stem
width and the measurement's conditions (ImageNet-1K: 1000 classes at a 224 crop; CIFAR: 32x32,
10 or 100 classes). The block form and zero-init are left out: the forms are one function,
and zero-init only changes where training starts.

    >>> from builder import PRESETS
    >>> [row.label for row in rows_for(PRESETS["resnet101"])]
    ['Table 3: ResNet-101, 1 × 64d', 'Table 4: ResNet-101 (baseline), 1 × 64d']
"""

from __future__ import annotations

from dataclasses import dataclass

from .charts import COLORS, points_svg
from .spec import ResNeXtSpec

IMAGENET = "ImageNet-1K"


@dataclass(frozen=True)
class PaperRow:
    table: str  # "Table 3"
    model: str  # as the paper names it: "ResNeXt-50", "ResNet-101, wider"
    spec: ResNeXtSpec | None  # the network it reports; None where this builder cannot make it
    errors: tuple[tuple[str, float], ...]  # ("top-1", 22.2), ("top-5", 6.0): error in %
    dataset: str = IMAGENET
    note: str = ""

    @property
    def setting(self) -> str:
        """'32 × 4d', as the paper writes it."""
        if self.spec is None:
            return "–"
        return f"{self.spec.cardinality} × {self.spec.width_per_group}d"

    @property
    def label(self) -> str:
        return f"{self.table}: {self.model}, {self.setting}"

    @property
    def top1(self) -> float:
        return dict(self.errors)["top-1"]


def pct(value: float) -> str:
    """An error as the paper prints it: 22.0, 3.65."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:.2f}"


def _imagenet(c: int, d: int, depths) -> ResNeXtSpec:
    return ResNeXtSpec(cardinality=c, width_per_group=d, depths=tuple(depths))


def _cifar(c: int, d: int, classes: int) -> ResNeXtSpec:
    return ResNeXtSpec(cardinality=c, width_per_group=d, depths=(3, 3, 3), stem="cifar",
                       num_classes=classes, image_size=32)


R50, R101, R200 = (3, 4, 6, 3), (3, 4, 23, 3), (3, 24, 36, 3)
TABLE3_SETTINGS = ((1, 64), (2, 40), (4, 24), (8, 14), (32, 4))
_T3 = {R50: (23.9, 23.0, 22.6, 22.3, 22.2), R101: (22.0, 21.7, 21.4, 21.3, 21.2)}


def _table3() -> list[PaperRow]:
    rows = []
    for depths, errors in _T3.items():
        layers = 50 if depths == R50 else 101
        for (c, d), error in zip(TABLE3_SETTINGS, errors, strict=True):
            model = f"ResNet-{layers}" if c == 1 else f"ResNeXt-{layers}"
            rows.append(PaperRow("Table 3", model, _imagenet(c, d, depths), (("top-1", error),),
                                 note=f"same complexity; width C×d of conv2: {c * d}"))
    return rows


PAPER_ROWS: tuple[PaperRow, ...] = (
    *_table3(),
    # Table 4: about twice ResNet-101's complexity, spent on depth, width or cardinality
    PaperRow("Table 4", "ResNet-101 (baseline)", _imagenet(1, 64, R101),
             (("top-1", 22.0), ("top-5", 6.0)), note="1× complexity"),
    PaperRow("Table 4", "ResNet-200 (deeper)", _imagenet(1, 64, R200),
             (("top-1", 21.7), ("top-5", 5.8)), note="2× complexity: deeper"),
    PaperRow("Table 4", "ResNet-101, wider", _imagenet(1, 100, R101),
             (("top-1", 21.3), ("top-5", 5.7)), note="2× complexity: wider"),
    PaperRow("Table 4", "ResNeXt-101", _imagenet(2, 64, R101),
             (("top-1", 20.7), ("top-5", 5.5)), note="2× complexity: more paths"),
    PaperRow("Table 4", "ResNeXt-101", _imagenet(64, 4, R101),
             (("top-1", 20.4), ("top-5", 5.3)), note="2× complexity: more paths"),
    # Table 7: CIFAR test error, one row per data set
    PaperRow("Table 7", "ResNeXt-29", _cifar(8, 64, 10), (("test", 3.65),), "CIFAR-10",
             "34.4M params"),
    PaperRow("Table 7", "ResNeXt-29", _cifar(8, 64, 100), (("test", 17.77),), "CIFAR-100",
             "34.4M params"),
    PaperRow("Table 7", "ResNeXt-29", _cifar(16, 64, 10), (("test", 3.58),), "CIFAR-10",
             "68.1M params"),
    PaperRow("Table 7", "ResNeXt-29", _cifar(16, 64, 100), (("test", 17.31),), "CIFAR-100",
             "68.1M params"),
    # Wide ResNet 28-10 uses pre-activation basic blocks 160-640 wide: not a spec here
    PaperRow("Table 7", "Wide ResNet 28-10", None, (("test", 4.17),), "CIFAR-10",
             "36.5M params; pre-activation blocks, not buildable here"),
    PaperRow("Table 7", "Wide ResNet 28-10", None, (("test", 20.50),), "CIFAR-100",
             "36.5M params; pre-activation blocks, not buildable here"),
)


def architecture(spec: ResNeXtSpec) -> ResNeXtSpec:
    """The spec as the paper would report it: form and zero-init do not change the network
    it trains."""
    return spec.replace(form="c", zero_init_residual=False)


def rows_for(spec: ResNeXtSpec) -> list[PaperRow]:
    """Every row of Tables 3, 4 and 7 that reports this network (a network can be in two
    tables: ResNet-101 is Table 3's and Table 4's baseline)."""
    key = architecture(spec)
    return [row for row in PAPER_ROWS if row.spec == key]


def errors_text(spec: ResNeXtSpec) -> str:
    """The paper's errors for this network with their tables: '22.0% top-1 (Table 3);
    22.0% top-1, 6.0% top-5 (Table 4)', or '–'."""
    parts = []
    for row in rows_for(spec):
        values = ", ".join(f"{pct(value)}% {what}" for what, value in row.errors)
        where = row.table if row.dataset == IMAGENET else f"{row.table}, {row.dataset}"
        parts.append(f"{values} ({where})")
    return "; ".join(parts) or "–"


HEADERS = ["table", "model", "setting", "depths", "data set", "top-1 / test error",
           "top-5 error", "note"]


def table() -> dict:
    """Every row the paper reports, as {"headers", "data"}."""
    data = []
    for row in PAPER_ROWS:
        errors = dict(row.errors)
        first = errors.get("top-1", errors.get("test"))
        depths = "–" if row.spec is None else ", ".join(map(str, row.spec.depths))
        data.append([row.table, row.model, row.setting, depths, row.dataset, f"{pct(first)}%",
                     f"{pct(errors['top-5'])}%" if "top-5" in errors else "–", row.note])
    return {"headers": list(HEADERS), "data": data}


# -- charts -----------------------------------------------------------------------------------

def table3_chart() -> str:
    """Table 3 as error against C: at equal complexity, error falls as C rises."""
    ticks = [str(c) for c, _ in TABLE3_SETTINGS]
    series = []
    for i, (depths, errors) in enumerate(_T3.items()):
        name = "ResNeXt-50" if depths == R50 else "ResNeXt-101"
        points = [(j, e, f"{pct(e)}% ({c}×{d}d)") for j, ((c, d), e)
                  in enumerate(zip(TABLE3_SETTINGS, errors, strict=True))]
        series.append((name, COLORS[i], points, True))
    return points_svg("Table 3: same complexity, higher C, lower error", "cardinality C",
                      "top-1 error (%)", ticks, series)


def table4_chart() -> str:
    """Table 4 as error against C: twice ResNet-101's complexity spent on depth (ResNet-200),
    width (1 × 100d) or cardinality (2 × 64d, 64 × 4d)."""
    rows = [r for r in PAPER_ROWS if r.table == "Table 4"]
    ticks = sorted({str(r.spec.cardinality) for r in rows}, key=int)
    series = []
    for i, (name, pick) in enumerate((("ResNet-101 (1×)", "baseline"),
                                      ("deeper: ResNet-200", "deeper"),
                                      ("wider: 1 × 100d", "wider"),
                                      ("more paths", "more paths"))):
        chosen = [r for r in rows if pick in r.model or pick in r.note]
        points = [(ticks.index(str(r.spec.cardinality)), r.top1,
                   f"{pct(r.top1)}% ({r.setting.replace(' ', '')})") for r in chosen]
        series.append((name, COLORS[i], points, len(points) > 1))
    return points_svg("Table 4: 2× complexity — more paths beat deeper or wider",
                      "cardinality C", "top-1 error (%)", ticks, series)


def sweep_chart(specs: list[ResNeXtSpec]) -> str:
    """The paper's top-1 error against C for the specs that have one (a sweep of ResNeXt-50
    or -101 gives all five points of Table 3); one line per template. Empty if none has."""
    groups: dict[tuple, list] = {}
    for spec in specs:
        rows = [r for r in rows_for(spec) if r.table == "Table 3"]
        if rows:
            template = (spec.depths, spec.block, spec.stem)
            groups.setdefault(template, []).append((spec, rows[0]))
    if not groups:
        return ""
    ticks = sorted({str(s.cardinality) for g in groups.values() for s, _ in g}, key=int)
    series = []
    for i, members in enumerate(groups.values()):
        members.sort(key=lambda m: m[0].cardinality)
        points = [(ticks.index(str(s.cardinality)), r.top1, f"{pct(r.top1)}% ({r.setting})")
                  for s, r in members]
        name = members[0][1].model.replace("ResNet", "ResNeXt")
        series.append((f"{name} (paper, Table 3)", COLORS[i % len(COLORS)], points, True))
    return points_svg("The paper's top-1 error of the pinned networks, against C",
                      "cardinality C", "top-1 error (%)", ticks, series)


# -- Table 1 ----------------------------------------------------------------------------------

def _table1_number(n: float, exponent: int) -> str:
    """As Table 1 prints its totals (4.2 × 10⁹), with a smaller power of ten, by thousands,
    where the paper's would print 0.0 (a small network: 5.4 × 10⁶, not 0.0 × 10⁹)."""
    while exponent > 0 and n < 10 ** exponent / 10:
        exponent -= 3
    return _sci(n, exponent)


def _sci(n: float, exponent: int) -> str:
    # no-break spaces: "4.2 × 10⁹" never wraps apart on a narrow screen (issue 13)
    return f"{n / 10 ** exponent:.1f}\u00a0×\u00a010{str(exponent).translate(_SUP)}"


_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def block_shape(spec: ResNeXtSpec, stage: int) -> str:
    """One stage's block as the paper's Table 1 writes it:
    '[1×1, 128; 3×3, 128, C=32; 1×1, 256] × 3' (', C=…' left out at C=1)."""
    w, out, depth = spec.width(stage), spec.out_channels(stage), spec.depths[stage]
    groups = f", C={spec.cardinality}" if spec.cardinality > 1 else ""
    if spec.block == "bottleneck":
        layers = f"1×1, {w}; 3×3, {w}{groups}; 1×1, {out}"
    else:
        layers = f"3×3, {w}{groups}; 3×3, {out}"
    return f"[{layers}] × {depth}"


def table1(spec: ResNeXtSpec) -> dict:
    """The paper's Table 1 for this spec, as {"headers", "data"}: per stage its output size
    and block shape, then the head, the parameters and the paper's "FLOPs" (multiply-adds)."""
    from .complexity import network_counts
    from .network import stage_plans, stem_size

    after_conv, _ = stem_size(spec)
    if spec.stem == "imagenet":
        stem = f"7×7, {spec.stem_width}, stride 2"
    else:
        stem = f"3×3, {spec.stem_width}, stride 1"
    data = [["conv1", f"{after_conv}×{after_conv}", stem]]
    for plan in stage_plans(spec):
        shape = block_shape(spec, plan.index)
        if plan.index == 0 and spec.stem == "imagenet":
            shape = f"3×3 max pool, stride 2; {shape}"
        data.append([plan.paper_name, f"{plan.size_out}×{plan.size_out}", shape])
    data.append(["", "1×1", f"global average pool, {spec.num_classes}-d fc, softmax"])
    total = network_counts(spec).total
    data.append(["# params.", "", _table1_number(total.params, 6)])
    data.append(["FLOPs (multiply-adds, as the paper counts them)", "",
                 _table1_number(total.macs, 9)])
    return {"headers": ["stage", "output", spec.name], "data": data}


def paper_flops(macs: int) -> str:
    """Multiply-adds as the paper's Table 1 prints its "FLOPs": 4228000000 -> '4.2 × 10⁹'
    (and 5370000 -> '5.4 × 10⁶')."""
    return _table1_number(macs, 9)
