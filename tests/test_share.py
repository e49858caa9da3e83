"""builder.share: a configuration in a link and back, and builder.views' pure helpers."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder import PRESETS, ResNeXtSpec, SpecError, views
from builder.complexity import matched_width
from builder.share import KEYS, MAX_QUERY_CHARS, SharedView, from_query, preset_of, to_query


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_one_word_link(name):
    assert to_query(PRESETS[name]) == f"preset={name}"
    assert from_query(f"?preset={name}") == SharedView(PRESETS[name], name, 0)


def test_link_names_only_what_differs_from_its_preset():
    spec = PRESETS["resnext50_32x4d"].replace(cardinality=64, form="a", depths=(3, 4, 23, 3))
    query = to_query(spec, preset="resnext50_32x4d", stage=2)
    assert query == "preset=resnext50_32x4d&C=64&depths=3,4,23,3&form=a&stage=2"
    assert from_query("?" + query) == SharedView(spec, "resnext50_32x4d", 2)


def test_link_without_preset_is_relative_to_the_defaults():
    spec = ResNeXtSpec(cardinality=8, width_per_group=64, depths=(3, 3, 3), stem="cifar",
                       num_classes=10, image_size=32, zero_init_residual=True,
                       stride_on="1x1", in_channels=1, stem_width=32)
    query = to_query(spec)
    assert query == ("C=8&d=64&depths=3,3,3&stem=cifar&stride=1x1&classes=10&in=1&size=32"
                     "&stem_width=32&zero_init=1")
    assert from_query(query).spec == spec
    assert from_query(query).preset is None


def test_mapping_input_and_unknown_keys_are_ignored():
    view = from_query({"preset": "resnet18", "__theme": "dark", "utm_source": "x", "C": "2"})
    assert view.spec == PRESETS["resnet18"].replace(cardinality=2)
    assert view.preset == "resnet18"
    assert from_query("") == SharedView(ResNeXtSpec(), None, 0)
    assert preset_of(ResNeXtSpec()) == "resnext50_32x4d"
    assert preset_of(ResNeXtSpec(cardinality=3)) is None


@pytest.mark.parametrize("query, message", [
    ("C=0", "cardinality: 0 is not allowed; expected a whole number from 1 to 4096"),
    ("C=abc", "cardinality: 'abc' is not allowed; expected a whole number (link key C)"),
    ("C=1e3", "cardinality: '1e3' is not allowed; expected a whole number (link key C)"),
    ("d=-4", "width_per_group: '-4' is not allowed; expected a whole number (link key d)"),
    ("depths=3,,4", "depths: '3,,4' is not allowed; expected whole numbers separated by "
                    "commas, e.g. 3,4,6,3 (link key depths)"),
    ("depths=3,4,6,3,1,1,1,1,1", "depths: (3, 4, 6, 3, 1, 1, 1, 1, 1) is not allowed; "
                                 "expected 1 to 8 stages"),
    ("form=z", "form: 'z' is not allowed; expected one of 'a', 'b', 'c'"),
    ("block=basic&stride=1x1", "stride_on: '1x1' is not allowed; a basic block has no 1x1"),
    ("zero_init=maybe", "zero_init_residual: 'maybe' is not allowed; expected 1 or 0"),
    ("preset=resnet9", "preset: 'resnet9' is not allowed; expected one of 'resnet18'"),
    ("stage=4", "stage: 4 is not allowed; expected a whole number from 0 to 3 (the spec has "
                "4 stages)"),
    ("C=" + "9" * 300, "cardinality: '" + "9" * 37 + "...' is not allowed; expected a short "
                       "text value"),
])
def test_bad_values_name_the_field(query, message):
    with pytest.raises(SpecError) as info:
        from_query(query)
    assert str(info.value).startswith(message)


def test_overlong_query_is_refused_before_parsing():
    with pytest.raises(SpecError, match=f"at most {MAX_QUERY_CHARS} characters"):
        from_query("C=1&" * 600)


def test_unknown_preset_name_for_to_query():
    with pytest.raises(SpecError, match="preset: 'nope'"):
        to_query(ResNeXtSpec(), preset="nope")


specs = st.builds(
    ResNeXtSpec,
    cardinality=st.integers(1, 4096), width_per_group=st.integers(1, 4096),
    depths=st.lists(st.integers(1, 128), min_size=1, max_size=8).map(tuple),
    form=st.sampled_from("abc"), stem=st.sampled_from(["imagenet", "cifar"]),
    num_classes=st.integers(1, 100_000), in_channels=st.integers(1, 64),
    image_size=st.integers(8, 2048), stem_width=st.integers(1, 1024),
    zero_init_residual=st.booleans())


@settings(max_examples=150, deadline=None)
@given(spec=specs, preset=st.sampled_from([None, *sorted(PRESETS)]))
def test_round_trip(spec, preset):
    query = to_query(spec, preset=preset)
    assert len(query) < MAX_QUERY_CHARS
    assert set(k for k, _, in (p.split("=") for p in query.split("&") if p)) <= {
        "preset", *KEYS}
    assert from_query(query).spec == spec


# -- builder.views: the text the app shows --------------------------------------------------

def test_headline_and_overview_numbers():
    spec = PRESETS["resnext50_32x4d"]
    assert views.headline(spec) == (
        "**ResNeXt-50 (32x4d)**, form (c) · **25,028,904** parameters · **4.23 G** "
        "multiply-adds · **8.46 G** FLOPs (= 2 × 4.23 G multiply-adds; the paper counts one "
        "multiply-add as one FLOP: 4.2\u00a0×\u00a010⁹ in its Table 1's terms) at 224×224")
    text = views.overview_markdown(spec, "resnet50")
    assert "| parameters | 25,028,904 | 25,557,032 | −528,128 (−2.07%) |" in text
    assert "| FLOPs = 2 × multiply-adds | 8.46 G | 8.18 G |" in text


@pytest.mark.parametrize("name, counterpart", [
    ("resnext50_32x4d", "resnet50"), ("resnext101_64x4d", "resnet101"),
    ("wide_resnet50_2", "resnet50"), ("resnet18", "resnet18")])
def test_the_default_baseline_is_the_specs_own_template(name, counterpart):
    """ResNeXt-50's C = 1 counterpart is torchvision's ResNet-50, to the parameter."""
    spec = PRESETS[name]
    base = views.baseline_spec(views.DEFAULT_BASELINE, spec)
    assert views.DEFAULT_BASELINE == "auto"
    assert base.name == PRESETS[counterpart].name
    assert views.counts(base).total.params == views.counts(PRESETS[counterpart]).total.params


def test_a_cifar_spec_is_compared_with_the_cifar_resnet_not_resnet50():
    """Issue 13: against resnet50 a ResNeXt-29 showed "+6200%" multiply-adds, and keeping the
    complexity solved its d against an ImageNet network."""
    spec = PRESETS["resnext29_8x64d"]
    base = views.baseline_spec("auto", spec)
    assert base == spec.replace(cardinality=1, width_per_group=64)
    assert (base.name, base.stem, base.depths, base.num_classes) == ("ResNet-29", "cifar",
                                                                     (3, 3, 3), 10)
    text = views.overview_markdown(spec)
    mine, theirs = views.counts(spec).total, views.counts(base).total
    assert "| | this network | baseline: ResNet-29 (its C = 1 counterpart) | change |" in text
    assert (f"| parameters | {mine.params:,} | {theirs.params:,} | "
            f"+{mine.params - theirs.params:,} (+{mine.params / theirs.params - 1:.2%}) |"
            in text)
    # equal complexity at C = 8 (the 1x64d block's 256·64 + 9·64² + 64·256 = 69,632 weights):
    # 8 × (256·d + 9·d² + d·256) = 69,632 gives d = 13.7, rounded to 14
    assert matched_width(spec, base) == 14
    assert "ResNet-50" not in text
    # another baseline may still be picked
    assert "baseline: ResNet-50 (resnet50)" in views.overview_markdown(spec, "resnet50")


def test_stage_table_rows_add_up():
    spec = PRESETS["resnext101_64x4d"]
    table = views.stage_table(spec)
    assert table["headers"][0] == "stage" and len(table["data"]) == 4 + 3
    params = [int(row[7].replace(",", "")) for row in table["data"][:-1]]
    assert sum(params) == 83_455_272
    assert table["data"][-1][7] == "83,455,272"
    assert table["data"][3][:7] == ["conv4 (layer3)", "23", "512", "1024", "16", "1024",
                                    "28→14"]


def test_formula_is_the_papers_block_count():
    text, value = views.block_formula(PRESETS["resnext50_32x4d"], 0)
    assert text == "32 × (256×4 + 9×4² + 4×256) = 32 × 2,192" and value == 70_144
    text, value = views.block_formula(PRESETS["resnet50"], 0)
    assert value == 69_632  # the ResNet bottleneck of RESNEXT.md
    text, value = views.block_formula(PRESETS["resnet18"], 1)
    assert text == "1 × (9×128×128 + 9×128×128) = 1 × 294,912" and value == 294_912
    md = views.formula_markdown(PRESETS["resnext50_32x4d"])
    assert "| conv2, later blocks | `32 × (256×4 + 9×4² + 4×256) = 32 × 2,192` | 70,144 " \
           "| 69,632 |" in md


@pytest.mark.parametrize("cardinality, d", [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)])
def test_matched_width_reproduces_table_2(cardinality, d):
    spec = PRESETS["resnet50"].replace(cardinality=cardinality)
    assert matched_width(spec, PRESETS["resnet50"]) == d


def test_matched_width_of_a_basic_block_keeps_c_times_d():
    spec = PRESETS["resnet18"].replace(cardinality=8)
    assert matched_width(spec, PRESETS["resnet18"]) == 8


def test_depths_parsing_and_stage_edits():
    assert views.parse_depths(" 3, 4,6 ,3,") == (3, 4, 6, 3)
    with pytest.raises(SpecError, match="depths: '3, x' is not allowed"):
        views.parse_depths("3, x")
    assert views.add_stage((3, 4)) == (3, 4, 4)
    assert views.remove_stage((3, 4)) == (3,)
    with pytest.raises(SpecError, match="cannot remove the only stage: a network needs at "
                                        "least one"):
        views.remove_stage((3,))
    with pytest.raises(SpecError, match="cannot add a stage: the limit is 8 stages"):
        views.add_stage((1,) * 8)
    # an empty stage is refused; too many stages say the limit, however long the text
    with pytest.raises(SpecError, match="stage 3 is empty"):
        views.parse_depths("3,4,,6")
    with pytest.raises(SpecError, match="stage 1 is empty"):
        views.parse_depths(",3")
    with pytest.raises(SpecError, match=r"expected at most 8 stages \(this has 200\)"):
        views.parse_depths(",".join(["1"] * 200))


@pytest.mark.parametrize("value, shown", [
    (None, "empty"), ("", "empty"), ("  ", "empty"), ((3, 4, 6), "3, 4, 6"), ([1] * 30,
    "1, " * 12 + "…"), ("abc", "“abc”"), (4.0, "4"), (2.5, "2.5"), (True, "on"),
    ("x" * 80, "“" + "x" * 49 + "…”")])
def test_values_are_shown_as_typed(value, shown):
    assert views.show_value(value) == shown


def test_labels_come_from_the_spec_metadata():
    assert views.label_of("cardinality") == "Cardinality C"
    assert views.label_of("depths[2]") == "Blocks per stage (stage 3)"
    assert views.label_of("baseline") == "Baseline"
    error = SpecError("cardinality", None, "expected a whole number from 1 to 4096")
    assert views.user_message(error) == ("Cardinality C: empty; expected a whole number from 1 "
                                         "to 4096")
    assert views.field_of(SpecError("depths[0]", 0, "x")) == "depths"
    assert views.field_of(SpecError("config", 0, "x")) is None


def test_formatting():
    assert views.fmt_si(4_230_000_000) == "4.23 G"
    assert views.fmt_delta(90, 100) == "−10 (−10.00%)"
    assert views.fmt_delta(5, 5) == "same"
    assert views.fmt_bytes(102_760_448) == "102.76 MB"
    html = views.svg_html('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg id="x"></svg>', 'a"b')
    assert html.startswith('<figure class="graph-view graph-zoomable" aria-label="a&quot;b">'
                           '<div class="graph-tools" role="toolbar"')
    assert html.endswith('</div><svg id="x"></svg></figure>')
    assert re.findall(r'data-graph="(\w+)"', html) == ["fullscreen", "in", "out", "fit"]


def test_baseline_travels_in_the_link():
    spec = PRESETS["resnext50_32x4d"]
    query = to_query(spec, "resnext50_32x4d", baseline="resnet101")
    assert query == "preset=resnext50_32x4d&baseline=resnet101"
    assert from_query(query) == SharedView(spec, "resnext50_32x4d", 0, "resnet101")
    assert from_query("preset=resnet18").baseline is None
    # auto, the default, is never written, and read where a link has it
    assert to_query(spec, "resnext50_32x4d", baseline="auto") == "preset=resnext50_32x4d"
    assert from_query("preset=resnet18&baseline=auto").baseline == "auto"
    with pytest.raises(SpecError, match=r"^baseline: 'vgg16' is not allowed; expected auto or "
                       r"one of "):
        from_query("preset=resnet18&baseline=vgg16")
    with pytest.raises(SpecError, match=r"^baseline: 'vgg16' is not allowed"):
        to_query(spec, baseline="vgg16")
