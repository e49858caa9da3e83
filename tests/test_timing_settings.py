"""builder.timing's package: TimingSettings (validated once, frozen, hashable), time_model
with a settings object, builder.fold, and the size of the package's modules and functions."""

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from builder import build_model, fold, randomize_
from builder import timing as T
from builder.spec import FORMS, ResNeXtSpec

TINY = ResNeXtSpec(cardinality=2, width_per_group=2, depths=(1, 1), stem="cifar",
                   image_size=16, num_classes=10)
PACKAGE = Path(T.__file__).parent


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- validation: each bad field raises TimingSettingError naming it --------------------------
@pytest.mark.parametrize("field, fields", [
    ("device", {"device": "tpu"}),
    ("batch_size", {"batch_size": 0}),
    ("batch_size", {"batch_size": 2.5}),
    ("image_size", {"image_size": 0}),
    ("dtype", {"dtype": "fp8"}),
    ("dtype", {"dtype": "tf32"}),  # GPU only
    ("mode", {"mode": "eval"}),
    ("channels_last", {"channels_last": "yes"}),
    ("compile", {"compile": None}),
    ("cuda_graphs", {"cuda_graphs": True}),  # GPU only
    ("cudnn_benchmark", {"cudnn_benchmark": "yes"}),
    ("cudnn_benchmark", {"cudnn_benchmark": False}),  # GPU only
    ("fast", {"fast": True, "mode": "train"}),
    ("warmup", {"warmup": -1}),
    ("warmup", {"compile": True, "warmup": 0}),
    ("iters", {"iters": 0}),
    ("seed", {"seed": -1}),
    ("input_shape", {"input_shape": (3, 0, 4)}),
    ("macs", {"macs": -5}),
    ("name", {"name": 7}),
    ("cross_check", {"cross_check": 2}),
    ("deadline_s", {"deadline_s": float("nan")}),
    ("freeze", {"freeze": True}),  # without compile
    ("freeze", {"freeze": True, "compile": True, "mode": "train", "warmup": 1}),
])
def test_each_bad_field_is_refused_naming_it(field, fields):
    with pytest.raises(T.TimingSettingError, match=f"^{field}: "):
        T.TimingSettings(**{"device": "cpu", **fields})


def test_the_messages_are_todays():
    """time_model's and the CLI's messages come from TimingSettings now."""
    with pytest.raises(T.TimingSettingError, match=r"^dtype: 'fp8' is not allowed; expected "
                       "one of fp32, tf32, bf16, fp16$"):
        T.TimingSettings(device="cpu", dtype="fp8")
    with pytest.raises(T.TimingSettingError, match=r"^freeze: freezing is a torch.compile "):
        T.time_model(TINY, device="cpu", freeze=True)


def test_settings_are_frozen_hashable_and_normalised():
    s = T.TimingSettings(device=torch.device("cpu"), batch_size=2, input_shape=[3, 8, 8])
    assert s.device == "cpu" and s.input_shape == (3, 8, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch_size = 4
    same = T.TimingSettings(device="cpu", batch_size=2, input_shape=(3, 8, 8))
    assert s == same and hash(s) == hash(same) and len({s, same}) == 1
    assert T.TimingSettings.of(s, batch_size=4) == dataclasses.replace(s, batch_size=4)
    assert T.TimingSettings.of(None, batch_size=4).batch_size == 4
    with pytest.raises(TypeError, match="expected a TimingSettings"):
        T.TimingSettings.of({"batch_size": 4})


def test_device_defaults_resolve_in_one_place():
    r = T.TimingSettings(device="cpu").resolved()
    assert (r.device, r.warmup, r.iters) == ("cpu", T.DEFAULT_WARMUP["cpu"],
                                             T.DEFAULT_ITERS["cpu"])
    assert T.TimingSettings(device="cpu", warmup=0, iters=3).resolved().iters == 3


def test_time_model_with_settings_equals_time_model_with_keywords():
    keywords = dict(batch_size=1, device="cpu", warmup=0, iters=2, seed=3, deadline_s=60.0)
    by_object = T.time_model(TINY, T.TimingSettings(**keywords))
    by_keywords = T.time_model(TINY, **keywords)
    overridden = T.time_model(TINY, T.TimingSettings(device="cpu"), batch_size=1, warmup=0,
                              iters=2, seed=3, deadline_s=60.0)
    assert by_object.settings == by_keywords.settings == overridden.settings
    assert by_object.settings["seed"] == 3 and by_object.settings["deadline_s"] == 60.0
    forms = T.time_forms(TINY, T.TimingSettings(**keywords), block=0)
    assert [r.settings["seed"] for r in forms] == [3] * len(FORMS)


def test_estimate_takes_the_settings_object_and_todays_arguments(monkeypatch):
    monkeypatch.setitem(T.peak._PEAK_CACHE, ("cpu", "fp32", torch.get_num_threads()), 0.1)
    s = T.TimingSettings(batch_size=2, device="cpu", iters=3, warmup=1)
    assert T.estimate_seconds(TINY, s) == T.estimate_seconds(TINY, 2, "cpu", iters=3,
                                                              warmup=1)
    assert T.estimate_seconds(TINY, s, forms=True) == T.estimate_seconds(
        TINY, batch_size=2, device="cpu", iters=3, warmup=1, forms=True)


# -- builder.fold --------------------------------------------------------------------------
@pytest.mark.parametrize("form", tuple(FORMS))
def test_fold_keeps_the_outputs(form):
    spec = TINY.replace(form=form)
    torch.manual_seed(0)
    model = randomize_(build_model(spec), seed=1).double().eval()
    folded = fold.fold_bn(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        expected, got = model(x), folded(x)
    assert (expected - got).abs().max().item() <= 1e-10 * expected.abs().max().item()
    assert T.fold_bn is fold.fold_bn


def test_fold_one_block_and_the_timing_re_export():
    modules, shape, macs = fold.one_block(TINY, 1)
    assert set(modules) == set(FORMS) and shape[0] == modules["c"].conv1.in_channels
    with pytest.raises(ValueError, match="block: stage 2 is not allowed"):
        fold.one_block(TINY, 2)
    with pytest.raises(T.TimingSettingError, match="block: stage 2 is not allowed"):
        T.one_block(TINY, 2)


def test_fold_is_model_code():
    """builder.fold imports neither builder.timing nor clocks."""
    tree = ast.parse((PACKAGE.parent / "fold.py").read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {n for n in names if "timing" in n or n in ("time", "threading")}


# -- size ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_over_600_lines_no_function_over_100(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 600
    long = [(node.name, node.end_lineno - node.lineno + 1)
            for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > 100]
    assert long == []
