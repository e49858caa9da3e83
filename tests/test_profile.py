"""builder.timing.profile, builder.flops, `python -m builder profile`, the roofline, and the
in-place shortcut add of builder/blocks.py (issue 14)."""

import inspect
import textwrap

import pytest
import torch

from builder import PRESETS, build_model, convert
from builder import blocks as B
from builder.convert import randomize_
from builder.registry import BLOCK_TYPES, FORMS

TINY = PRESETS["resnext50_32x4d"].replace(depths=(1, 1), image_size=32, num_classes=10,
                                          cardinality=4, width_per_group=4)


# -- the in-place shortcut add (item 7) -------------------------------------------------------
def _out_of_place(cls):
    """`cls` with the forward it had before issue 14: `out + identity`, out of place."""
    source = textwrap.dedent(inspect.getsource(cls.forward))
    assert source.count("out += identity") == 1, cls.__name__
    source = source.replace("out += identity", "out = out + identity")
    namespace = {}
    exec(source, vars(B), namespace)  # noqa: S102  (our own source, one line changed)
    return type(f"OutOfPlace{cls.__name__}", (cls,), {"forward": namespace["forward"]})


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("block", sorted(BLOCK_TYPES))
def test_in_place_add_keeps_every_output_bit(block, form):
    """Every form and block type: the output (eval and train mode) and every gradient are
    bit for bit those of the out-of-place add; the backward runs (BN does not save its
    output, so adding into it in place is allowed)."""
    spec = TINY.replace(block=block, form=form, stride_on="3x3")
    torch.manual_seed(0)
    model = randomize_(build_model(spec), 0)
    reference = convert(model, form)  # a copy with the same weights
    for module in reference.modules():
        if type(module) in set(B.BLOCK_CLASSES.values()):
            module.__class__ = _out_of_place(type(module))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reference.eval()(x))
    outputs = []
    for net in (model.train(), reference.train()):
        net.zero_grad()
        out = net(x)
        out.square().sum().backward()
        outputs.append((out, [p.grad for p in net.parameters()]))
    (out, grads), (ref_out, ref_grads) = outputs
    assert torch.equal(out, ref_out)
    assert len(grads) == len(ref_grads) > 0
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads, strict=True))


# -- the profile ------------------------------------------------------------------------------
from builder import cli  # noqa: E402
from builder import timing as T  # noqa: E402
from builder.complexity import network_counts  # noqa: E402
from builder.flops import compare, flop_counters  # noqa: E402
from builder.fold import one_block  # noqa: E402
from builder.timing.memory import measure_memory  # noqa: E402
from builder.timing.profile import SUM_BOUND  # noqa: E402

FAST = {"batch_size": 1, "device": "cpu", "warmup": 1, "iters": 2}
BIGGER = {**FAST, "batch_size": 2}
C32 = PRESETS["resnext50_32x4d"].replace(depths=(1,), image_size=32, num_classes=10)


@pytest.fixture(scope="module")
def forms_profile():
    """One profile of three forms at C=32 (one stage, 64x64, batch 2): shared by the tests
    below, which assert on counts and ratios, never on absolute times. Not smaller: at 32x32
    and batch 1 form (a)'s ~230 module calls of microsecond operators leave a quarter of the
    step to the framework between modules (0.74 coverage measured): the lesson of form (a),
    but not the setting of the 15% bound."""
    return T.profile(C32.replace(image_size=64), forms="abc", **BIGGER)


def test_json_contract(forms_profile):
    data = forms_profile.to_dict()
    for key in ("total_ms", "peak_tflops", "bandwidth_gbs", "layers", "forms"):
        assert key in data, key
    assert data["peak_tflops"] > 0 and data["bandwidth_gbs"] > 0
    assert set(data["forms"]) == set(FORMS)
    for form in data["forms"].values():
        assert {"total_ms", "op_calls", "kernels"} <= set(form)
    layer_keys = {"name", "kind", "groups", "calls", "self_ms", "macs", "bytes", "intensity",
                  "tflops"}
    assert all(layer_keys <= set(layer) for layer in data["layers"])
    names = {layer["name"] for layer in data["layers"]}
    assert {"conv1", "layer1.0.conv2", "fc", "layer1.0 (own ops)"} <= names
    conv2 = next(r for r in data["layers"] if r["name"] == "layer1.0.conv2")
    assert (conv2["kind"], conv2["groups"], conv2["calls"]) == ("Conv2d", 32, 1)
    # the shortcut add (in place) is the block's own op
    assert next(r for r in data["layers"] if r["name"] == "layer1.0 (own ops)")["calls"] == 1
    assert "peak_note" not in data or "above the measured" in data["peak_note"]
    json_text = __import__("json").dumps(data)  # plain data, no tensors
    assert "total_ms" in json_text


def test_layer_macs_add_up_to_the_analytic_count(forms_profile):
    """Per-layer multiply-adds come from the modules' shapes: in every form they add up to
    builder.complexity's count exactly (BN at 2 per channel per image, as it counts)."""
    expected = network_counts(C32.replace(image_size=64)).macs * BIGGER["batch_size"]
    for p in forms_profile.forms.values():
        assert p.macs == expected


def _best_coverage(spec, form, first, tries=3, **settings):
    """The best coverage of up to `tries` profiles: on a loaded machine (this one's load
    average reached 6 on 2 cores) a thread descheduled between two modules puts that wait in
    the step but in no layer; the best of three sees the machine's quiet moments."""
    best = first
    for _ in range(tries - 1):
        if best >= COVERAGE[form]:
            break
        best = max(best, T.profile(spec.replace(form=form), **settings).main.coverage)
    return best


# Coverage bounds at the fixture's small size (best of up to three runs). Form (c): the
# issue's 15%. Forms (a) and (b) run ~230 module calls of operators of tens of microseconds,
# so the framework between modules (Python, the scope hooks) takes 15-20% of their step here
# (measured 0.80-0.86 on a quiet machine): the bound at full size is the next test's.
COVERAGE = {"a": 0.6, "b": 0.6, "c": 0.85}


def test_layers_cover_the_small_step_to_the_stated_bounds(forms_profile):
    """Leaf layers + blocks' own ops cover the profiled step (bounds: COVERAGE); the rest
    (other_ms) is the framework between modules."""
    for form, p in forms_profile.forms.items():
        assert p.other_ms == pytest.approx(p.total_ms - p.layers_ms)
        assert p.coverage <= 1.0 + 1e-9
        note = next(n for n in forms_profile.notes if n.startswith(f"form ({form}):"))
        assert ("more than 15%: many short module calls" in note) == (p.coverage < 0.85)
        best = _best_coverage(C32.replace(image_size=64), form, p.coverage, **BIGGER)
        assert best >= COVERAGE[form], (form, best)


# bench_profile's network: the stem and ResNeXt-50's first two conv2 blocks at 224x224
FULL_SIZE = PRESETS["resnext50_32x4d"].replace(depths=(2,), image_size=224)


def test_layers_add_up_to_the_step_within_15_percent_at_full_size():
    """The issue's bound, for every form, at the paper's image size: leaf layers + blocks'
    own ops cover at least 85% of the profiled step (best of up to three runs per form, for
    a loaded machine; 0.92, 0.88 and 0.95 measured for (a), (b), (c) on a quiet one)."""
    settings = {**FAST, "iters": 2}
    first = T.profile(FULL_SIZE, forms="abc", **settings)
    for form, p in first.forms.items():
        assert p.other_ms == pytest.approx(p.total_ms - p.layers_ms)
        assert p.coverage <= 1.0 + 1e-9
        best = p.coverage
        for _ in range(2):
            if best >= 1 - SUM_BOUND:
                break
            best = max(best, T.profile(FULL_SIZE.replace(form=form), **settings).main.coverage)
        assert best >= 1 - SUM_BOUND, (form, best)


def test_the_totals_row_sums_every_layer_row(forms_profile):
    """The tables' last row: self time = layers_ms, % = the coverage, multiply-adds = the
    analytic count, bytes and calls summed, intensity and TFLOP/s of the sums."""
    for p in forms_profile.forms.values():
        t = p.totals()
        assert t.name == f"(all {len(p.layers)} rows)"
        assert t.self_ms == p.layers_ms and t.percent == pytest.approx(100 * p.coverage)
        assert t.macs == p.macs and t.bytes == sum(r.bytes for r in p.layers)
        assert t.calls == sum(r.calls for r in p.layers)
        assert t.intensity == pytest.approx(2 * t.macs / t.bytes)
        assert t.tflops == pytest.approx(2 * t.macs / (t.self_ms / 1e3) / 1e12)
        assert t.cells()[0] == t.name and len(t.cells()) == len(T.LAYER_COLUMNS)


def test_by_kind_sums_the_rows_and_lines_up_the_forms(forms_profile):
    """Kinds partition the rows: their times add up to layers_ms, the framework's to
    other_ms, so the percentages to 100; the multiply-adds' shares to 100. The 3x3 of one
    block at C=32: 32 calls in forms (a) and (b), one grouped call in form (c)."""
    from builder.timing import breakdown

    data = forms_profile.to_dict()
    for form, p in forms_profile.forms.items():
        kinds = {k.kind: k for k in breakdown.by_kind(p)}
        framework = kinds.pop(breakdown.FRAMEWORK)
        assert sum(k.self_ms for k in kinds.values()) == pytest.approx(p.layers_ms)
        assert framework.self_ms == p.other_ms
        assert sum(k.percent for k in kinds.values()) + framework.percent == pytest.approx(100)
        assert sum(k.macs_percent for k in kinds.values()) == pytest.approx(100)
        assert kinds["conv 3x3"].calls == (1 if form == "c" else 32)
        assert [k["kind"] for k in data["kinds"][form]][-1] == breakdown.FRAMEWORK


def test_form_a_makes_many_times_the_calls_of_form_c(forms_profile):
    """At C=32 form (a) runs 32 paths of 7 modules per block: counted, not timed. Bound: at
    least 10x the operator calls and kernels of form (c) (about 15x here)."""
    a, b, c = (forms_profile.forms[f] for f in "abc")
    assert a.op_calls >= 10 * c.op_calls and a.kernels >= 10 * c.kernels
    assert c.op_calls < b.op_calls < a.op_calls
    conv2 = [r for r in a.layers if r.name.endswith(".conv2") and r.kind == "Conv2d"]
    assert len(conv2) == 32 and all(r.groups == 1 for r in conv2)


def test_training_profile_has_a_backward_row():
    """In training the forward's layers, the backward (the autograd engine's functions) and
    the optimizer cover the step; what is left is Python (the loss, the SGD step's own code),
    a larger share of a tiny network's step: bound 0.5 here, best of three (0.57 to 0.98
    measured on this loaded machine)."""
    result = T.profile(C32.replace(form="c"), mode="train", **FAST)
    rows = {r.name: r for r in result.main.layers}
    assert rows["(backward and optimizer)"].self_ms > 0
    assert result.main.coverage <= 1.0 + 1e-9
    assert _best_coverage(C32, "c", result.main.coverage, mode="train", **FAST) >= 0.5
    assert any("train: the layer rows are the forward pass" in n for n in result.notes)


def test_bad_profile_settings_name_their_field():
    with pytest.raises(T.TimingSettingError, match="^forms: "):
        T.profile(C32, forms="abz", **FAST)
    with pytest.raises(T.TimingSettingError, match="^input_shape: "):
        T.profile(C32, input_shape=(3, 8, 8), **FAST)
    with pytest.raises(TypeError):
        T.profile("resnet50")


def test_memory_estimate_within_a_factor_of_the_measured_peak():
    """builder.guards' estimate against the measured peak on the CPU (held before the step +
    torch.profiler's memory events): within a factor of 1.5 either way, inference and a
    training step, every form (measured here: 0.99 inference, 1.11-1.13 training)."""
    spec = C32.replace(cardinality=8, depths=(1, 1), image_size=32)
    rows = measure_memory(spec, batch_size=2, device="cpu", forms="abc")
    assert [(r.form, r.mode) for r in rows] == [(f, m) for f in "abc"
                                                for m in ("inference", "train")]
    for r in rows:
        assert 1 / 1.5 <= r.ratio <= 1.5, r


# -- FLOP counters -----------------------------------------------------------------------------
def test_counters_against_hand_computed_values_for_one_block():
    """ResNeXt-50's conv2 block (256-d in and out, C=32, d=4, w=128, 56x56), batch 1.
    By hand: forward MACs 56^2 x (256x128 + 9x4x128 + 128x256) = 219,971,584 in the convs,
    + 1,024 for the three BNs (2 per channel). FLOPs = 2 x MACs. Backward by hand: conv1's
    weight gradient (its input, the image, needs none) F1, conv2's input and weight gradients
    2 x F2, conv3's 2 x F3, with F1 = F3 = 2 x 3136 x 32768 and F2 = 2 x 3136 x 4608.
    FlopCounterMode counts conv2's weight gradient 32 x F2 (dense): 33 x F2, not 2 x F2."""
    modules, shape, macs = one_block(PRESETS["resnext50_32x4d"], 0)
    f1 = f3 = 2 * 3136 * 32768
    f2 = 2 * 3136 * 4608
    forward = 2 * 219_971_584
    rows = {r.counter.split(" ")[0]: r for r in compare(modules["c"], shape, macs)}
    assert macs == 219_971_584 + 1_024
    assert rows["ours"].forward_flops == 2 * macs == forward + 2_048
    assert rows["ours"].forward_backward_flops == 3 * 2 * macs
    assert rows["torch"].forward_flops == forward
    assert rows["torch"].forward_backward_flops == forward + f1 + 33 * f2 + 2 * f3
    assert "ignores groups" in rows["torch"].reason
    assert f"{forward + f1 + 2 * f2 + 2 * f3:,} in all by hand" in rows["torch"].reason
    if rows.get("torchinfo") is not None and rows["torchinfo"].forward_flops is not None:
        assert rows["torchinfo"].forward_flops == 2 * macs
    assert rows["fvcore"].reason in ("not installed", "") or rows["fvcore"].forward_flops


def test_flop_counter_mode_counts_a_grouped_conv_backward_34_times_its_forward():
    """One groups=32 3x3 conv whose input needs a gradient: input gradient and weight gradient
    are each one forward (3x in all); FlopCounterMode says 1 + 1 + 32 = 34x."""
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv2d(128, 128, 3, padding=1, groups=32, bias=False).to("meta")
    x = torch.empty(2, 128, 56, 56, device="meta", requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        conv(x)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    assert forward == 2 * 2 * 56 * 56 * 128 * 4 * 9
    assert counter.get_total_flops() == 34 * forward


def test_network_counters_ours_equals_torchinfo():
    rows = {r.counter.split(" ")[0]: r for r in flop_counters(PRESETS["resnext50_32x4d"])}
    assert rows["ours"].forward_flops == 2 * network_counts(PRESETS["resnext50_32x4d"]).macs
    if rows["torchinfo"].forward_flops is not None:
        assert rows["torchinfo"].forward_flops == rows["ours"].forward_flops
    assert rows["torch"].forward_backward_flops > 3 * rows["torch"].forward_flops  # the bug


# -- the command line --------------------------------------------------------------------------
@pytest.mark.parametrize("argv, text", [
    (["--forms", "--one-block", "0"], "--one-block: not for the profile"),
    (["--cross-check"], "--cross-check: not for the profile"),
    (["--roofline", "chart.pdf"], "--roofline: 'chart.pdf' is not allowed"),
    (["--trace", "/no/such/folder/t.json"], "--trace: cannot write"),
    (["--dtype", "tf32", "--device", "cpu"], "dtype: 'tf32' needs a CUDA GPU"),
    (["--batch", "0"], "--batch: 0 is not allowed"),
    (["--cardinality", "0"], "cardinality"),
])
def test_bad_options_exit_2_with_one_line(capsys, argv, text):
    assert cli.main(["profile", "--preset", "resnet18", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err, err


def test_cli_profile_json_csv_roofline_and_trace(tmp_path, capsys):
    import json

    paths = {k: str(tmp_path / name) for k, name in (("csv", "l.csv"), ("svg", "r.svg"),
                                                     ("trace", "t.json"))}
    argv = ["profile", "--preset", "resnext50_32x4d", "--depths", "1", "--image-size", "16",
            "--num-classes", "10", "--batch", "1", "--warmup", "1", "--iters", "1",
            "--device", "cpu", "--json", "--csv", paths["csv"], "--roofline", paths["svg"],
            "--trace", paths["trace"]]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert "forms" not in data and data["layers"]
    lines = open(paths["csv"], encoding="utf-8").read().splitlines()
    assert lines[0].startswith("form,name,kind") and len(lines) == 1 + len(data["layers"])
    assert open(paths["svg"], encoding="utf-8").read().lstrip().startswith("<?xml")
    assert "traceEvents" in json.load(open(paths["trace"], encoding="utf-8"))


def test_roofline_points_are_the_convolutions_and_the_classifier(forms_profile, tmp_path):
    """Each convolution and the classifier is a point (form (a) at C=32: 32 paths x 3 convs,
    the downsample, the stem and fc); the caption counts the points above the roof; the SVG
    keeps its text (the roof's measured figures, one legend entry per form)."""
    from builder import roofline

    found = roofline.points(forms_profile)
    for form, p in forms_profile.forms.items():
        wanted = sorted(r.name for r in p.layers if r.kind in ("Conv2d", "Linear"))
        assert sorted(name for name, _, _ in found[form]) == wanted
    assert len(found["a"]) == 32 * 3 + 3 and len(found["c"]) == 3 + 3
    above = [(f, n) for f, pts in found.items() for n, x, y in pts
             if y > min(forms_profile.peak_tflops, x * forms_profile.bandwidth_gbs / 1e3)]
    assert roofline.above_roof(forms_profile) == above
    assert (f"{len(above)} point(s) above the roof" in roofline.caption(forms_profile)) == bool(
        above)
    svg = open(roofline.plot(forms_profile, str(tmp_path / "r.svg")), encoding="utf-8").read()
    roof = (f"roof: {forms_profile.peak_tflops:.3g} TFLOP/s, "
            f"{forms_profile.bandwidth_gbs:.3g} GB/s")
    assert roof in svg and all(f"form ({f}) layers" in svg for f in FORMS)


# -- learn: "equal FLOPs, different speed" ----------------------------------------------------
def test_equal_flops_step_before_and_after_a_profile(forms_profile):
    from builder.learn import STEP_COUNT, equal_flops_step

    before = equal_flops_step(C32)
    assert before["title"] == "Equal FLOPs, different speed" and before["index"] == STEP_COUNT
    assert "No profile has run yet" in before["text"] and "1/32" in before["text"]
    after = equal_flops_step(C32, forms_profile)
    assert "No profile has run yet" not in after["text"]
    a = forms_profile.forms["a"]
    assert f"form (a): {a.total_ms:.3g} ms, {a.op_calls:,} operator calls" in after["text"]
    assert "(groups=32)" in after["text"]
    three = {f: sum(r.self_ms for r in p.layers if r.name.endswith("conv2"))
             for f, p in forms_profile.forms.items()}  # the 3x3s: conv2 in every form
    assert (f"the same 3x3 multiply-adds: {three['a']:.3g} ms in 32 calls in form (a), "
            f"{three['c']:.3g} ms in 1 grouped call in form (c)") in after["text"]


def test_plain_iterations_bracket_the_profiled_ones(monkeypatch):
    """Half the plain iterations run before the profiled ones and half after: a machine that
    changed pace in between shows as plain_drift, and the overhead is then called noise."""
    import importlib

    P = importlib.import_module("builder.timing.profile")  # the module, not T.profile
    real, calls = P._time_calls, []

    def scripted(fn, device, count, between=None):
        calls.append(count)
        times = real(fn, device, count, between)
        return {0: [10.0] * count, 2: [20.0] * count}.get(len(calls) - 1, times)

    monkeypatch.setattr(P, "_time_calls", scripted)
    result = T.profile(C32.replace(form="c"), batch_size=1, device="cpu", warmup=1, iters=4)
    assert calls == [2, 4, 2]  # plain before, profiled (iters, at most MAX_PROFILED), after
    main = result.main
    assert main.plain_ms == 15.0 and main.plain_drift == pytest.approx(10 / 15)
    note = next(n for n in result.notes if n.startswith("form (c): layers cover"))
    assert note.endswith("within the noise: the plain time moved 67% between before and after "
                         "the profiled iterations") == (abs(main.overhead) < 10 / 15)


def test_the_profilers_chatter_is_kept_off_stderr_and_nothing_else_is():
    """kineto's USDT lines at start and stop (torch 2.13 prints them at every log level) and
    the allocator's once-per-process warning go; a line of our own, written to descriptor 2
    inside the region, comes back after it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = textwrap.dedent("""
        import os, sys, torch
        from builder.timing import quiet
        x = torch.ones(1000)
        with quiet.profile(profile_memory=True):
            os.write(2, b"mine\\n")
            del x
            torch.ones(2) + 1
        print("after", file=sys.stderr)
        with torch.profiler.profile():  # unfiltered: the chatter, where this torch has it
            torch.ones(2) + 1
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=str(Path(__file__).resolve().parents[1]),
                          env={**os.environ, "PYTHONPATH": "."})
    assert done.returncode == 0, done.stderr
    quiet_part, _, loud_part = done.stderr.partition("after\n")
    assert quiet_part == "mine\n"
    from builder.timing.quiet import kept_lines

    assert kept_lines(loud_part) == ""  # what torch printed unfiltered is all chatter


def test_kept_lines_drops_only_the_chatter():
    from builder.timing.quiet import kept_lines

    text = ("USDT:2026-12-02 07:05:27 4828:4828 SyncActivityProfilerHandler.cpp:52] "
            "profiler_start\n"
            "STAGE:2026-12-02 07:05:38 4850:4850 SyncActivityProfilerHandler.cpp:51] Completed "
            "Stage: Warm Up\n"
            "[W1202 07:05:19.700785883 CPUAllocator.cpp:245] Memory block of unknown size was "
            "allocated before the profiling started, profiler results will not include the "
            "deallocation event\n"
            "[W1202 07:05:19.700785883 CPUAllocator.cpp:245] another warning\n"
            "USDT is a word\n")
    assert kept_lines(text) == ("[W1202 07:05:19.700785883 CPUAllocator.cpp:245] another "
                                "warning\nUSDT is a word\n")
