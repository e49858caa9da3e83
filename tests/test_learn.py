"""builder.learn: the classroom walk-through, its numbers and its highlights."""

import pytest

from builder import PRESETS, views
from builder.learn import STEP_COUNT, highlight_svg, lesson


@pytest.mark.parametrize("name", ["resnext50_32x4d", "resnet18", "resnext29_8x64d",
                                  "resnext101_64x4d"])
@pytest.mark.parametrize("step", range(STEP_COUNT))
def test_every_highlighted_id_is_in_the_drawn_block(name, step):
    item = lesson(PRESETS[name], step)
    svg = highlight_svg(views.block_svg(item["spec"], 0), item["highlight"])
    assert svg.count(' highlight"') == len(item["highlight"]), item["highlight"]
    assert item["index"] == step and item["count"] == STEP_COUNT


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
