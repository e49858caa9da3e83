"""builder.proof: the classroom proof that forms (a), (b), (c) are one function."""

import pytest

from builder import PRESETS, ResNeXtSpec, SpecError
from builder.proof import estimate_seconds, prove

TINY = ResNeXtSpec(cardinality=4, width_per_group=2, depths=(1, 1), stem="cifar",
                   num_classes=10, image_size=8)


@pytest.mark.parametrize("form", "ab")
def test_network_forms_agree_within_bounds(form):
    result = prove(TINY.replace(form=form), modes=("eval", "train"), time_forms=False)
    assert result.ok
    assert {(r["form"], r["dtype"], r["mode"]) for r in result.rows} == {
        (f, d, m) for f in "abc" if f != form for d in ("float64", "float32")
        for m in ("eval", "train")}
    for r in result.rows:
        assert r["from"] == form
        if r["dtype"] == "float64":
            assert r["max_abs_diff"] <= 1e-10 and r["bound"] == 1e-10
        else:
            assert r["rel_error"] <= 1e-4 and r["bound"] == 1e-4


def test_one_block_with_the_timing_contrast():
    spec = TINY.replace(cardinality=8, form="a")
    result = prove(spec, "block", stage=1, batch_size=2)
    assert result.ok and len(result.rows) == 4
    assert [t.name[-8:] for t in result.timings] == ["form (a)", "form (b)", "form (c)"]
    assert all(t.device_type == "cpu" for t in result.timings)


def test_estimates_say_a_big_network_takes_long():
    block = estimate_seconds(PRESETS["resnext50_32x4d"], "block")
    network = estimate_seconds(PRESETS["resnext101_64x4d"])
    assert 0 < block < 20 < network


@pytest.mark.parametrize("kwargs, message", [
    ({"scope": "layer"}, "scope: 'layer' is not allowed"),
    ({"stage": 2}, "stage: 2 is not allowed; expected a whole number from 0 to 1"),
    ({"batch_size": 0}, "batch_size: 0 is not allowed"),
    ({"modes": ("test",)}, "mode: 'test' is not allowed"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        prove(TINY, time_forms=False, **kwargs)
