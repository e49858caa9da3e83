"""builder.graph: block and network drawings, rendered through Graphviz's real `dot`.

Every SVG is parsed as XML and read by node id, so the tests check what a reader sees: the
node count, the numbers on each layer, the elision count, the captions' exact counts."""

import os
import re
import stat
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder import PRESETS, ResNeXtSpec, SpecError, build_model, network_counts, stage_plans
from builder.cli import main
from builder.graph import (
    BACKGROUND,
    CLUSTER_FILL,
    FILL,
    INSTALL_HINT,
    LABEL,
    MAX_BLOCK_NODES,
    TEXT,
    TITLE,
    GraphvizError,
    draw_block,
    draw_network,
    render,
    svg_text,
)

SVG = "{http://www.w3.org/2000/svg}"
R50 = PRESETS["resnext50_32x4d"]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def groups(svg: str, kind: str) -> dict[str, str]:
    """id -> the text in that <g> (its label lines joined by spaces), for nodes or clusters."""
    found = {}
    for g in parse(svg).iter(f"{SVG}g"):
        if g.get("class", "").split()[:1] == [kind]:
            assert g.get("id") not in found, f"duplicate id {g.get('id')}"
            found[g.get("id")] = " ".join((t.text or "").strip() for t in g.iter(f"{SVG}text"))
    return found


def nodes(svg: str) -> dict[str, str]:
    return groups(svg, "node")


def block_svg(spec, stage=0, block_index=0) -> str:
    return render(draw_block(spec, stage, block_index), "svg", strict=True).decode("utf-8")


def expected_block_nodes(spec, projection: bool) -> int:
    """The block view's node count, derived by hand from the paper's figure."""
    bottleneck = spec.block == "bottleneck"
    ends = 4 + (2 if projection else 0)  # input, add, relu, output (+ shortcut conv, BN)
    if spec.form == "c":  # conv+BN(+ReLU) per layer, no ReLU on the last
        return ends + (8 if bottleneck else 5)
    per_path = (6 if bottleneck else 3) + (spec.form == "a")
    paths = spec.cardinality if spec.cardinality <= 4 else 3
    elision = 1 if spec.cardinality > 4 else 0  # its end point is invisible, not drawn
    after = 2 if spec.form == "a" else 3  # sum + BN, or concat + conv + BN
    return ends + paths * per_path + elision + after


# -- every preset x form x view renders through dot ------------------------------------------

@pytest.mark.parametrize("form", ["a", "b", "c"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_and_form_renders_block_svg(name, form):
    spec = PRESETS[name].replace(form=form)
    stage = len(spec.depths) - 1  # the last stage: strided, projected, the widest numbers
    svg = block_svg(spec, stage)
    root = parse(svg)
    assert root.get("viewBox").startswith("0.00 0.00 ")
    found = nodes(svg)
    assert len(found) == expected_block_nodes(spec, projection=True) <= MAX_BLOCK_NODES
    plan = stage_plans(spec)[stage]
    assert found["input"].endswith(f"{plan.in_channels}×{plan.size_in}×{plan.size_in}")
    assert found["output"].endswith(f"{plan.out_channels}×{plan.size_out}×{plan.size_out}")
    assert found["shortcut_conv"] == (f"shortcut: 1×1 conv, {plan.in_channels}→"
                                      f"{plan.out_channels} projection, stride 2")
    # x's shape on every edge out of the input: into each drawn path (form (c): into conv1)
    # and into the shortcut; the elision's dashed edge stands for paths and carries none
    x = f"{plan.in_channels}×{plan.size_in}×{plan.size_in}"
    edges = groups(svg, "edge")
    heads = {"c": ["conv1"]}.get(form, [f"path{i}_conv1" for i in
                                        ([0, 1, spec.cardinality - 1] if spec.cardinality > 4
                                         else range(spec.cardinality))])
    expected = {f"input-{h}": x for h in heads + ["shortcut_conv"]}
    if spec.cardinality > 4 and form != "c":
        expected["input-paths_elided"] = ""
    assert {k: v for k, v in edges.items() if k.startswith("input-")} == expected


@pytest.mark.parametrize("form", ["a", "b", "c"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_and_form_renders_network_svg(name, form):
    spec = PRESETS[name].replace(form=form)
    svg = render(draw_network(spec), "svg", strict=True).decode("utf-8")
    counts = network_counts(spec)
    clusters = groups(svg, "cluster")
    assert list(clusters) == (["cluster_stem"] + [f"cluster_{s.plan.name}" for s in
                                                  counts.stages] + ["cluster_head"])
    found = nodes(svg)
    blocks = [i for i in found if i.endswith(("_first", "_rest"))]
    # identical blocks collapsed: at most two block nodes per stage, never one per block
    assert len(blocks) == sum(1 + (depth > 1) for depth in spec.depths)
    stem = 4 if spec.stem == "imagenet" else 3
    assert len(found) == 1 + (1 + stem) + sum(2 + (d > 1) for d in spec.depths) + 4
    title = " ".join(t.text for t in parse(svg).find(f"{SVG}g").findall(f"{SVG}text"))
    assert f"{counts.params:,} parameters" in title
    for stage in counts.stages:
        p = stage.plan
        caption = found[f"{p.name}_info"]
        assert caption.startswith(
            f"{p.paper_name} ({p.name}) {p.depth} block{'s' if p.depth > 1 else ''}, "
            f"{p.out_channels}-d out width {p.width} ({spec.cardinality} × {p.path_width}d) "
            f"{p.size_in}×{p.size_in} → {p.size_out}×{p.size_out} "
            f"params {stage.total.params:,} MACs ")


def test_network_caption_numbers_resnext101_64x4d():
    spec = PRESETS["resnext101_64x4d"]
    found = nodes(render(draw_network(spec), "svg").decode("utf-8"))
    # the caption's params are the built model's (meta device: no memory, no weights)
    model = build_model(spec, device="meta")
    assert sum(p.numel() for p in model.layer3.parameters()) == 51_769_344
    assert found["layer3_info"] == ("conv4 (layer3) 23 blocks, 1024-d out width 1024 "
                                    "(64 × 16d) 28×28 → 14×14 params 51,769,344 MACs 10.43 G")
    assert found["layer3_first"] == ("block 1: 512→1024, stride 2 1×1 512→1024, 3×3 "
                                     "1024→1024 groups=64, 1×1 1024→1024 "
                                     "1×1 projection shortcut, stride 2")
    assert found["layer3_rest"].startswith("blocks 2 to 23: × 22 identical, 1024→1024 ")
    assert found["fc"] == "fc, 2048→1000"
    assert sum(p.numel() for p in model.fc.parameters()) == 2_049_000
    assert found["head_info"] == "head params 2,049,000 MACs 2.05 M"
    assert found["stem_info"] == "stem imagenet stem, 224→56 params 9,536 MACs 118.01 M"
    title = " ".join(t.text for t in parse(render(draw_network(spec), "svg").decode())
                     .find(f"{SVG}g").findall(f"{SVG}text"))
    assert "ResNeXt-101 (64x4d), form (c), 224×224 input" in title
    assert "83,455,272 parameters, 15.46 G multiply-adds" in title  # RESNEXT.md's numbers


# -- readable at any cardinality --------------------------------------------------------------

@pytest.mark.parametrize("block", ["bottleneck", "basic"])
@pytest.mark.parametrize("form", ["a", "b", "c"])
@pytest.mark.parametrize("cardinality", [1, 2, 32, 64, 1000])
def test_node_count_is_bounded_at_any_cardinality(cardinality, form, block):
    spec = R50.replace(cardinality=cardinality, width_per_group=4, form=form, block=block)
    found = nodes(block_svg(spec))
    assert len(found) == expected_block_nodes(spec, projection=block == "bottleneck")
    assert len(found) <= MAX_BLOCK_NODES
    drawn = sorted({int(m) for m in re.findall(r"^path(\d+)_", "\n".join(found), re.M)})
    if form == "c":
        assert drawn == []
    elif cardinality <= 4:
        assert drawn == list(range(cardinality))
    else:
        assert drawn == [0, 1, cardinality - 1]
        assert found["paths_elided"] == (f"⋯ {cardinality - 3} more identical paths "
                                         f"(paths 3 to {cardinality - 1})")


@settings(max_examples=15, deadline=None)
@given(cardinality=st.integers(1, 4096), width=st.integers(1, 8), form=st.sampled_from("abc"),
       block=st.sampled_from(["bottleneck", "basic"]),
       depths=st.lists(st.integers(1, 3), min_size=1, max_size=5), data=st.data())
def test_any_spec_draws_within_the_node_bound(cardinality, width, form, block, depths, data):
    spec = ResNeXtSpec(cardinality=cardinality, width_per_group=width, depths=tuple(depths),
                       form=form, block=block, image_size=64)
    stage = data.draw(st.integers(0, len(depths) - 1))
    found = nodes(block_svg(spec, stage))
    projection = stage > 0 or block == "bottleneck"  # stage 0 of a basic block: 64 -> 64
    assert len(found) == expected_block_nodes(spec, projection) <= MAX_BLOCK_NODES


def test_form_a_numbers_match_the_paper_figure():
    # paper Fig. 3(a): a conv2 block, 256-d in and out, C=32 paths of 1x1 256->4, 3x3 4->4,
    # 1x1 4->256; the second block of the stage is the one with the identity shortcut
    svg = block_svg(R50.replace(form="a"), stage=0, block_index=1)
    found = nodes(svg)
    for i in (0, 1, 31):
        assert found[f"path{i}_conv1"] == "1×1 conv, 256→4"
        assert found[f"path{i}_conv2"] == "3×3 conv, 4→4"
        assert found[f"path{i}_conv3"] == "1×1 conv, 4→256"
        assert found[f"path{i}_bn1"] == found[f"path{i}_bn2"] == "BN"
        assert found[f"path{i}_relu1"] == found[f"path{i}_relu2"] == "ReLU"
        assert f"path{i}_bn3" not in found  # (a) has one BN, on the sum
    assert found["paths_elided"] == "⋯ 29 more identical paths (paths 3 to 31)"
    assert found["sum"] == "sum of 32 paths"
    assert found["bn3"] == "BN on the sum"
    assert "shortcut_conv" not in found
    edges = groups(svg, "edge")
    labelled = {k: v for k, v in edges.items() if v}
    # every shape change is labelled once, and nothing more: x into each path and the
    # identity, each conv's output in each path, each path's output, the sum, the addition
    x = "256×56×56"
    expected = {"input-add": f"identity {x}", "sum-bn3": x, "add-relu": x}
    for i in (0, 1, 31):
        expected |= {f"input-path{i}_conv1": x, f"path{i}_conv1-path{i}_bn1": "4×56×56",
                     f"path{i}_conv2-path{i}_bn2": "4×56×56", f"path{i}_conv3-sum": x}
    assert labelled == expected
    clusters = groups(svg, "cluster")
    assert clusters["cluster_path0"] == "path 1"
    assert clusters["cluster_path31"] == "path 32 of 32"


def test_form_b_and_c_numbers():
    found = nodes(block_svg(R50.replace(form="b"), stage=1))
    assert found["path0_conv1"] == "1×1 conv, 256→8"
    assert found["path31_conv2"] == "3×3 conv, 8→8 stride 2"
    assert "path0_conv3" not in found
    assert found["concat"] == "concatenate 32 × 8 = 256 channels"
    assert found["conv3"] == "1×1 conv, 256→512"
    assert found["shortcut_conv"] == "shortcut: 1×1 conv, 256→512 projection, stride 2"

    svg = block_svg(R50, stage=1)
    found = nodes(svg)
    assert found["conv1"] == "1×1 conv, 256→256"
    assert found["conv2"] == "3×3 conv, 256→256 groups=32 (32 × 8 channels), stride 2"
    assert found["conv3"] == "1×1 conv, 256→512"
    assert [k for k in found if k.startswith("relu")] == ["relu1", "relu2", "relu"]
    edges = groups(svg, "edge")
    assert {k: v for k, v in edges.items() if v} == {
        "input-conv1": "256×56×56", "conv1-bn1": "256×56×56", "conv2-bn2": "256×28×28",
        "conv3-bn3": "512×28×28", "input-shortcut_conv": "256×56×56",
        "shortcut_conv-shortcut_bn": "512×28×28", "add-relu": "512×28×28"}


@pytest.mark.parametrize("form", ["a", "b", "c"])
def test_stride_is_drawn_on_the_layer_that_carries_it(form):
    prefix = "" if form == "c" else "path0_"
    v15 = nodes(block_svg(R50.replace(form=form), stage=2))
    v1 = nodes(block_svg(R50.replace(form=form, stride_on="1x1"), stage=2))
    assert "stride 2" in v15[f"{prefix}conv2"] and "stride" not in v15[f"{prefix}conv1"]
    assert "stride 2" in v1[f"{prefix}conv1"] and "stride" not in v1[f"{prefix}conv2"]
    svg_v1 = block_svg(R50.replace(form=form, stride_on="1x1"), stage=2)
    # v1: the 1x1 already halves the size, so its output is 14x14
    assert groups(svg_v1, "edge")[f"{prefix}conv1-{prefix}bn1"].endswith("×14×14")
    title = " ".join(t.text for t in parse(svg_v1).find(f"{SVG}g").findall(f"{SVG}text"))
    assert "stride 2 on the first 1×1 (ResNet v1)" in title


def test_basic_block_says_it_is_a_wide_dense_block():
    spec = PRESETS["resnet34"].replace(cardinality=32, width_per_group=4, form="a")
    svg = block_svg(spec, stage=2)
    found = nodes(svg)
    assert found["path0_conv1"] == "3×3 conv, 128→16 stride 2"
    assert found["path0_conv2"] == "3×3 conv, 16→256"
    assert found["bn2"] == "BN on the sum"
    title = " ".join(t.text for t in parse(svg).find(f"{SVG}g").findall(f"{SVG}text"))
    assert "aggregate to one wide dense block" in title and "C*d=512 wide" in title
    dense = nodes(block_svg(spec.replace(form="c"), stage=2))
    assert dense["conv1"] == "3×3 conv, 128→512 stride 2"  # no groups: it is dense
    assert dense["conv2"] == "3×3 conv, 512→256"


def title_text(svg: str) -> str:
    return " ".join(t.text for t in parse(svg).find(f"{SVG}g").findall(f"{SVG}text"))


@pytest.mark.parametrize("form", ["a", "b", "c"])
@pytest.mark.parametrize(("block", "kind"), [("basic", "basic block"),
                                             ("bottleneck", "bottleneck")])
def test_cardinality_one_is_called_a_plain_resnet_block(block, kind, form):
    spec = PRESETS["resnet18"].replace(block=block, form=form)
    assert spec.cardinality == 1
    notes = title_text(block_svg(spec, stage=1)).split(f", form ({form})", 1)[1]
    expected = f"C=1: a plain ResNet {kind} of width d=128; the three forms coincide"
    stride = "first 3×3" if block == "basic" else "3×3 (ResNet v1.5, the paper)"
    assert notes.strip() == f"{expected} stride 2 on the {stride}"
    assert "aggregate" not in notes and "paths" not in notes


@pytest.mark.parametrize("form", ["a", "b", "c"])
@pytest.mark.parametrize("stride_on", ["3x3", "1x1"])
def test_drawn_layers_match_the_built_model(form, stride_on):
    """Each conv node id names a module of builder.blocks (path3_conv1 -> paths.3.conv1,
    shortcut_conv -> downsample.0); its label matches that module's kernel, channels, stride
    and groups."""
    spec = R50.replace(cardinality=8, width_per_group=4, depths=(1, 2), form=form,
                       stride_on=stride_on)
    block = build_model(spec, device="meta").layer2[0]
    found = nodes(block_svg(spec, stage=1))
    checked = 0
    for node_id, text in found.items():
        m = re.match(r"(?:shortcut: )?(\d)×\d conv, (\d+)→(\d+)", text)
        if not m:
            continue
        path = (node_id.replace("shortcut_conv", "downsample.0")
                .replace("path", "paths.").replace("_", "."))
        conv = block.get_submodule(path)
        assert (conv.kernel_size[0], conv.in_channels, conv.out_channels) == tuple(
            int(x) for x in m.groups()), node_id
        assert (f"stride {conv.stride[0]}" in text) == (conv.stride[0] > 1), node_id
        assert (f"groups={conv.groups}" in text) == (conv.groups > 1), node_id
        checked += 1
    assert checked == {"a": 3 * 3 + 1, "b": 3 * 2 + 2, "c": 4}[form]  # paths 0, 1, 7


# -- interface -------------------------------------------------------------------------------

def test_invalid_stage_and_block_index_raise_spec_error():
    with pytest.raises(SpecError, match=r"stage: 4 is not allowed; expected a whole number "
                                        r"from 0 to 3") as err:
        draw_block(R50, stage=4)
    assert err.value.field == "stage"
    for bad in (-1, True, 1.0, "0"):
        with pytest.raises(SpecError) as err:
            draw_block(R50, stage=bad)
        assert err.value.field == "stage"
    with pytest.raises(SpecError, match=r"from 0 to 5 \(layer3 has 6 blocks\)") as err:
        draw_block(R50, stage=2, block_index=6)
    assert err.value.field == "block_index"


def test_render_formats():
    graph = draw_block(R50)
    assert render(graph, "dot") == graph.source.encode("utf-8")
    assert graph.source.startswith("digraph block_layer1_0_c {")
    png = render(graph, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = svg_text(graph)
    assert svg.startswith("<?xml")
    root = parse(svg)
    assert root.get("style") == "max-width: 100%; height: auto;"
    assert re.fullmatch(r"0\.00 0\.00 [\d.]+ [\d.]+", root.get("viewBox"))
    with pytest.raises(SpecError, match="format"):
        render(graph, "jpg")


def test_style_uses_six_digit_colours_and_a_class_per_kind():
    source = draw_block(R50.replace(form="a")).source + draw_network(R50).source
    colours = set(re.findall(r'"(#[0-9a-fA-F]+)"', source))
    assert colours and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)
    assert f'bgcolor="{BACKGROUND}"' in source and "transparent" not in source
    kinds = {g.get("class").split()[1] for g in parse(block_svg(R50.replace(form="a"))).iter(
        f"{SVG}g") if g.get("class", "").startswith("node ")}
    assert kinds == {"io", "conv1x1", "conv3x3", "bn", "relu", "merge", "elision", "shortcut"}
    assert kinds <= set(FILL)


def test_drawing_builds_no_model_and_runs_no_dot(monkeypatch):
    """What keeps drawing cheap: the numbers come from formulas (stage_plans, network_counts),
    not from a torch model, and building the Digraph runs no `dot`. Both are forbidden here;
    every stage of the largest preset, in every form, still draws."""
    import torch

    def forbidden(*args, **kwargs):
        raise AssertionError("drawing must not build a torch module or run a program")

    monkeypatch.setattr(torch.nn.Module, "__init__", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    spec = PRESETS["resnext101_64x4d"]
    with pytest.raises(AssertionError):
        torch.nn.Linear(1, 1)  # the patch is in force
    for form in "abc":
        for stage in range(len(spec.depths)):
            source = render(draw_block(spec.replace(form=form), stage), "dot").decode()
            assert source.startswith(f"digraph block_layer{stage + 1}_0_{form} {{")
        assert "layer3_rest" in render(draw_network(spec.replace(form=form)), "dot").decode()


# -- colours: WCAG contrast of every text on what it is drawn on ------------------------------

NAMED = {"white": "#ffffff", "black": "#000000"}


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour."""
    colour = NAMED.get(colour, colour)
    assert re.fullmatch(r"#[0-9a-f]{6}", colour), colour
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_formula_and_why_the_drawing_has_its_own_background():
    assert contrast("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # WCAG's AA grey
    # the old edge-label colour on Gradio's light and dark pages
    assert contrast("#64748b", "#ffffff") == pytest.approx(4.76, abs=0.01)
    assert contrast("#64748b", "#0b0f19") == pytest.approx(4.02, abs=0.01)
    assert contrast("#64748b", "#1f2937") == pytest.approx(3.08, abs=0.01)
    # no grey reaches 4.5:1 on both white and #0b0f19, so no text may sit on a transparent
    # background: the drawing brings its own
    best = max(min(contrast(f"#{v:02x}{v:02x}{v:02x}", "#ffffff"),
                   contrast(f"#{v:02x}{v:02x}{v:02x}", "#0b0f19")) for v in range(256))
    assert best == pytest.approx(4.35, abs=0.01)


def shape_fill(g: ET.Element) -> str | None:
    """The fill of a node's or cluster's own shape (None: it has none, like a caption)."""
    for child in g:
        if child.tag in (f"{SVG}polygon", f"{SVG}path", f"{SVG}ellipse"):
            fill = child.get("fill")
            return None if fill in (None, "none", "transparent") else NAMED.get(fill, fill)
    return None


@pytest.mark.parametrize("svg", [
    lambda: block_svg(R50.replace(form="a"), 0, 1),  # clusters, elision, identity
    lambda: block_svg(R50.replace(form="b"), 1),  # projection shortcut
    lambda: block_svg(R50, 3),  # form (c): the grouped 3x3
    lambda: block_svg(PRESETS["resnet34"].replace(cardinality=2, form="a"), 1),  # basic
    lambda: render(draw_network(R50), "svg").decode(),  # captions, stem, pool, fc
], ids=["block_a", "block_b_projection", "block_c", "basic", "network"])
def test_every_text_has_contrast_on_what_it_is_drawn_on(svg):
    """Each <text> against its background: node text on its node's fill; cluster titles on
    the cluster's fill; the title on the drawing's background; edge labels and unfilled
    captions, which may fall anywhere, on the background and on every cluster fill."""
    root = parse(svg())
    graph = root.find(f"{SVG}g")
    assert shape_fill(graph) == BACKGROUND  # opaque: the page's own colour never shows
    clusters = {g.get("id"): shape_fill(g) for g in root.iter(f"{SVG}g")
                if g.get("class") == "cluster"}
    anywhere = {BACKGROUND} | {fill for fill in clusters.values() if fill}
    pairs = {(t.get("fill", "#000000"), BACKGROUND) for t in graph.findall(f"{SVG}text")}
    for g in root.iter(f"{SVG}g"):
        kind = g.get("class", "").split()[:1]
        texts = {t.get("fill", "#000000") for t in g.iter(f"{SVG}text")}
        own = shape_fill(g)
        backgrounds = {own} if kind in (["node"], ["cluster"]) and own else anywhere
        pairs |= {(text, bg) for text in texts for bg in backgrounds}
    assert {text for text, _ in pairs} <= {TEXT, TITLE, LABEL}
    assert {TEXT, TITLE} <= {text for text, _ in pairs}
    ratios = {(text, bg): round(contrast(text, bg), 2) for text, bg in pairs}
    assert min(ratios.values()) >= 4.5, {k: v for k, v in ratios.items() if v < 4.5}


def test_module_text_colours_have_contrast_on_every_fill():
    """The constants themselves, whichever drawing uses them: node text on every fill; the
    title, edge labels and captions on the background and the cluster fill."""
    for kind, fill in FILL.items():
        assert contrast(TEXT, fill) >= 4.5, kind
    for text in (TEXT, TITLE, LABEL):
        for bg in (BACKGROUND, CLUSTER_FILL):
            assert contrast(text, bg) >= 4.5, (text, bg)
    assert len(set(FILL[k] for k in ("io", "conv1x1", "conv3x3", "gconv3x3", "bn", "relu",
                                      "merge", "shortcut", "pool", "fc"))) == 10


# -- when `dot` is missing, fails or hangs ----------------------------------------------------

def fake_dot(tmp_path, script: str):
    path = tmp_path / "dot"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(tmp_path)


def test_missing_dot_gives_install_hint_and_keeps_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` anywhere
    graph = draw_network(R50)
    with pytest.raises(GraphvizError) as err:
        render(graph, "svg")
    assert isinstance(err.value, RuntimeError)
    assert "apt-get install graphviz" in str(err.value) and INSTALL_HINT in str(err.value)
    assert "`dot` program is not on PATH" in str(err.value)
    assert err.value.source == graph.source
    assert render(graph, "dot") == graph.source.encode()  # DOT needs no binary
    out = tmp_path / "net.png"
    assert main(["graph", "--view", "network", "-o", str(out)]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert not out.exists()


def test_failing_dot_reports_its_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_dot(tmp_path, 'echo "Error: syntax error in line 3" >&2\n'
                                                  "exit 1\n"))
    graph = draw_block(R50)
    with pytest.raises(GraphvizError, match="failed to draw SVG: Error: syntax error in "
                                            "line 3") as err:
        render(graph, "svg")
    assert err.value.source == graph.source


def test_slow_dot_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_dot(tmp_path, "exec /bin/sleep 30\n"))
    start = time.perf_counter()
    with pytest.raises(GraphvizError, match=r"took more than 0\.5 s") as err:
        render(draw_block(R50), "png", timeout=0.5)
    assert time.perf_counter() - start < 10
    assert err.value.source.startswith("digraph")


# -- python -m builder graph ------------------------------------------------------------------

def test_cli_writes_svg_png_and_dot(tmp_path, capsys):
    base = ["graph", "--preset", "resnext50_32x4d", "--form", "a", "--stage", "1"]
    assert main(base + ["-o", str(tmp_path / "b.svg")]) == 0
    found = nodes((tmp_path / "b.svg").read_text())
    assert found["path0_conv1"] == "1×1 conv, 256→8"
    assert found["paths_elided"] == "⋯ 29 more identical paths (paths 3 to 31)"
    assert main(base + ["-o", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["graph", "--view", "network", "-o", str(tmp_path / "n.dot")]) == 0
    assert (tmp_path / "n.dot").read_text() == draw_network(R50.replace(form="c")).source
    assert "wrote" in capsys.readouterr().out
    assert main(base) == 0  # no -o: DOT on stdout
    assert capsys.readouterr().out == draw_block(R50.replace(form="a"), 1).source
    assert main(base + ["-o", str(tmp_path / "b.jpg")]) == 2
    assert "no known suffix" in capsys.readouterr().err
    assert main(["graph", "--stage", "7"]) == 2
    assert "stage: 7 is not allowed" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--stage", "2"], ["--block-index", "1"]])
def test_cli_network_view_refuses_block_options(option, tmp_path, capsys):
    out = tmp_path / "n.svg"
    assert main(["graph", "--view", "network", *option, "-o", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: {option[0]}: only for --view block; the "
                                       "network view draws every stage\n")
    assert not out.exists()
    assert main(["graph", "--view", "block", *option, "-o", str(out)]) == 0
    assert out.exists()


def test_builder_imports_without_graphviz_package():
    """`python -m builder info` must not need the graphviz package: builder.graph imports it
    only when drawing."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['graphviz'] = None\n"
            "import builder, builder.graph\n"
            "from builder.cli import main\n"
            "assert main(['info']) == 0\n"
            "try:\n    builder.draw_block(builder.PRESETS['resnet18'])\n"
            "except builder.GraphvizError as e:\n    print('ERR', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ERR the graphviz Python package is missing: `pip install graphviz`" in done.stdout
