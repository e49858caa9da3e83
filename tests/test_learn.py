"""builder.learn: the classroom walk-through, its numbers and its highlights."""

import pytest

from builder import PRESETS, views
from builder.learn import STEP_COUNT, highlight_svg, lesson


@pytest.mark.parametrize("name", ["resnext50_32x4d", "resnet18", "resnext29_8x64d",
                                  "resnext101_64x4d"])
@pytest.mark.parametrize("step", range(STEP_COUNT))
def test_every_highlighted_id_is_in_the_drawn_block(name, step):
    item = lesson(PRESETS[name], step)
    svg = highlight_svg(views.block_svg(item["spec"], 0, item["block_index"]),
                        item["highlight"])
    assert svg.count(' highlight"') == len(item["highlight"]), item["highlight"]
    assert item["index"] == step and item["count"] == STEP_COUNT


@pytest.mark.parametrize("depth, block, channels", [(3, 1, "256→4"), (1, 0, "64→4")])
def test_the_drawn_block_has_the_numbers_of_the_text(depth, block, channels):
    """Step 3 says "1×1, in→d": the block drawn is the one with that `in` (a later block of
    conv2, 256→4, as in the paper's Fig. 3; the first, 64→4, where conv2 has one block)."""
    spec = PRESETS["resnext50_32x4d"].replace(depths=(depth, 4, 6, 3))
    item = lesson(spec, 2)
    assert item["block_index"] == block
    assert f"{channels.split('→')[0]}$\\to$4" in item["text"]
    assert f"1×1 conv, {channels}" in views.block_svg(item["spec"], 0, item["block_index"])
    assert lesson(spec, 7)["block_index"] == 0  # the shortcut step: the projecting block


def test_numbers_are_filled_in():
    text = lesson(PRESETS["resnext50_32x4d"], 2)["text"]
    assert "$$= 256\\cdot4 + 9\\cdot4^2 + 4\\cdot256 = 2{,}192$$" in text
    assert "$$C\\cdot(2{,}192) = 32\\cdot2{,}192 = 70{,}144$$" in text
    assert "= 69{,}632$" in text  # the ResNet bottleneck of RESNEXT.md
    text = lesson(PRESETS["resnext29_8x64d"], 5)["text"]
    assert "\\frac{9 \\cdot 512 \\cdot 512}{8} = 294{,}912" in text
    text = lesson(PRESETS["resnext50_32x4d"], 6)["text"]
    assert "C \\cdot d = 128$ wide" in text
    assert lesson(PRESETS["resnext50_32x4d"], 6)["spec"].block == "basic"


def test_steps_are_clamped_and_forms_follow_the_lesson():
    assert lesson(PRESETS["resnet50"], -3)["index"] == 0
    assert lesson(PRESETS["resnet50"], 99)["index"] == STEP_COUNT - 1
    assert [lesson(PRESETS["resnext50_32x4d"], i)["spec"].form for i in range(STEP_COUNT)] == [
        "a", "a", "a", "a", "b", "c", "a", "c"]


def test_highlight_svg_only_marks_the_ids_asked_for():
    svg = '<g id="sum" class="node merge"><g id="sum2" class="node merge">'
    assert highlight_svg(svg, ["sum"]) == (
        '<g id="sum" class="node merge highlight"><g id="sum2" class="node merge">')
