"""The Profile tab's handler called directly, without a server."""

import json

import gradio as gr
import pytest

from builder.registry import FORMS
from ui import profile as tab

TINY = json.dumps({"cardinality": 2, "width_per_group": 2, "depths": [1], "image_size": 32})
BAD = json.dumps({"cardinality": 0})


def _column(table, header):
    return [row[table["headers"].index(header)] for row in table["data"]]


@pytest.fixture(scope="module")
def shown():
    return tab.profile(TINY, "cpu", 1, "fp32", "inference", False, True, 1, False,
                       progress=lambda *a, **k: None)


def test_the_layer_rows_add_up_to_the_step(shown):
    """The rows (all of them: the tiny network has fewer than TOP) sum to the form's layers,
    the last row says so, and they cover the step. Bound: 0.5 of the step, not test_profile's
    15% (which holds at 224x224): at 32x32, batch 1, each operator takes microseconds and the
    framework between modules (Python, the scope hooks) is a quarter of the step (measured
    0.72-0.74 here); 0.5 leaves room for this shared 2-core machine's load."""
    forms = shown["profile_forms_table"]
    total = float(_column(forms, "step ms")[list(FORMS).index("c")])
    *layers, totals = shown["profile_layers"]["data"]
    names, ms_column = (shown["profile_layers"]["headers"].index(h) for h in ("layer", "self ms"))
    assert totals[names] == f"(all {len(layers)} rows)" and len(layers) < tab.TOP
    rows = sum(float(row[ms_column]) for row in layers)
    assert float(totals[ms_column]) == pytest.approx(rows, abs=0.0005 * len(layers))
    assert 0.5 * total <= rows <= total * 1.001 + 0.003  # +rounding of the 3-decimal cells
    covered = float(_column(forms, "layers %")[list(FORMS).index("c")])
    assert rows == pytest.approx(total * covered / 100, rel=0.01, abs=0.003)
    assert float(totals[shown["profile_layers"]["headers"].index("%")]) == pytest.approx(
        covered, abs=0.051)


def test_form_a_calls_more_operators_than_form_c(shown):
    calls = dict(zip(_column(shown["profile_forms_table"], "form"),
                     map(int, _column(shown["profile_forms_table"], "op calls")), strict=True))
    assert calls["(a)"] > calls["(c)"]


def test_roofline_trace_counters_and_lesson(shown):
    roof = shown["profile_roofline"]
    assert "<svg" in roof and "<?xml" not in roof and "Full screen" in roof  # the tools
    assert "Points: the convolutions and the classifier" in roof
    trace = json.loads(open(shown["profile_trace"]["value"], encoding="utf-8").read())
    assert trace["traceEvents"]
    assert str(tab.OUTPUT_DIR) in shown["profile_trace"]["value"]
    assert "FlopCounterMode" in " ".join(_column(shown["profile_counters"], "counter"))
    assert all(r for r in _column(shown["profile_counters"], "reason"))
    assert "Measured (" in shown["profile_lesson"]
    modes = _column(shown["profile_memory"], "mode")
    assert sorted(modes) == sorted(["inference", "train"] * len(FORMS))


def test_the_heat_map_shades_the_block(shown):
    heat = shown["profile_heat"]
    assert "<svg" in heat and 'fill="#ff0000"' in heat  # the slowest layer: full red
    assert heat.count('fill="#ff') >= 8  # conv1..3, bn1..3, the shortcut, the add at least


def test_a_bad_spec_is_one_line():
    with pytest.raises(gr.Error) as caught:
        tab.profile(BAD, "cpu", 1, "fp32", "inference", False, True, 1, False)
    assert caught.value.message == ("cardinality: 0 is not allowed; expected a whole number "
                                    "from 1 to 4096")


def test_a_bad_setting_is_not_run():
    out = tab.profile(TINY, "cpu", 0, "fp32", "inference", False, True, 1, False)
    assert out["profile_message"].startswith("**Not run.** Batch: 0")
    assert "\n" not in out["profile_message"]


def test_a_long_cpu_profile_asks_first(monkeypatch):
    """The estimate is fixed: measured, it follows the matmul peak, which a loaded machine
    measures lower (and an estimate past 900 s is refused outright, the next test)."""
    monkeypatch.setattr(tab, "_estimate", lambda *args: 123.4)
    big = json.dumps({"preset": "resnext101_64x4d"})
    out = tab.profile(big, "cpu", 2, "fp32", "inference", False, True, 1, False)
    assert out["profile_confirm"]["value"] == "Run anyway (about 123 s)"
    assert out["profile_message"].startswith("**This profile would take about 123 s on the CPU**")


def test_a_profile_estimated_past_the_cap_is_refused_even_when_confirmed(monkeypatch):
    monkeypatch.setattr(tab, "_estimate", lambda *args: 901.0)
    out = tab.profile(TINY, "cpu", 1, "fp32", "inference", False, True, 1, True)
    assert out["profile_message"] == (
        "**Not run.** this profile would take about 901 s (estimated), more than the "
        "900 s this page starts (a run is stopped after 300 s): make it smaller "
        "(batch, image size, one block)")


def test_the_kinds_table_lines_up_the_forms(shown):
    """One row per kind, a column per form; the 3x3 work is one grouped conv per block in form
    (c) and C = 2 dense ones in (a): one row, its calls counted. The last row is the
    framework outside modules, in every form."""
    kinds = shown["profile_kinds"]
    assert kinds["headers"] == ["kind", "% of multiply-adds"] + [f"form ({f})" for f in FORMS]
    rows = {row[0]: row for row in kinds["data"]}
    three = rows["conv 3x3"]
    assert three[2].endswith(", 2 calls") and three[4].endswith(", 1 call")
    assert kinds["data"][-1][0] == "framework outside modules"
    assert all(cell.endswith("%)") for cell in kinds["data"][-1][2:])
