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


@pytest.mark.parametrize("name", ["resnext50_32x4d", "resnet50", "resnext29_8x64d"])
def test_every_text_is_printable_and_its_formulas_close(name):
    """No control character in a step (a "\\t" in "\\times" once reached the page as a tab
    and KaTeX drew "3imes3"), and every $ formula is closed."""
    from builder.learn import equal_flops_step

    spec = PRESETS[name]
    texts = [lesson(spec, i)["text"] for i in range(STEP_COUNT)]
    texts.append(equal_flops_step(spec)["text"])
    for text in texts:
        assert not any(ord(ch) < 32 and ch != "\n" for ch in text), text
        assert text.count("$") % 2 == 0, text


def test_equal_flops_step_at_c_1_and_at_the_stage_size():
    """A ResNet (C = 1) gets no "1/1 of a dense 3x3"; the intensities are at the stage's own
    size (32x32 for the CIFAR stem, 56x56 at 224): hand-computed for ResNeXt-29 (8x64d),
    w = 512, d = 64: 2*9*512*64*32^2 / (4*2*512*32^2 + 4*9*512*64) = 112.4 FLOP/byte against
    2*9*512^2*32^2 / (4*2*512*32^2 + 4*9*512^2) = 354.5 dense, 3.15 times (not 8: the dense
    conv's weights are most of its bytes)."""
    from builder.learn import equal_flops_step

    resnet = equal_flops_step(PRESETS["resnet50"])["text"]
    assert "this network is a ResNet" in resnet and "1/1" not in resnet
    cifar = equal_flops_step(PRESETS["resnext29_8x64d"])["text"]
    assert "3.15 times lower: 112 against 354 FLOP/byte per image at 32x32" in cifar
    assert "at most 8 times" in cifar
    # ResNeXt-50: w = 128, d = 4 at 56x56: 8.95 against 243, 27.2 times (about C = 32)
    assert "27.2 times lower: 8.95 against 243 FLOP/byte per image at 56x56" in (
        equal_flops_step(PRESETS["resnext50_32x4d"])["text"])
