"""builder.export: the standalone source, the spec as JSON, ONNX.

The source's fidelity, for every preset x form and for random valid specs: it passes ruff,
runs as a script in a fresh interpreter that cannot import `builder`, and its model has
build_model(spec)'s state_dict keys and shapes and, with the same weights, bit-identical
float32 outputs on CPU. Full presets are compared on the meta device (no forward); forward
passes use the same presets at one block per stage and a small image, so every preset's
block type, stem, stride and form still runs.
"""

import ast
import importlib.util
import inspect
import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder import (
    PRESETS,
    ExportUnavailable,
    ResNeXtSpec,
    SpecError,
    blocks,
    build_model,
    count_macs,
    count_params,
    export_json,
    export_onnx,
    export_source,
    randomize_,
)
from builder.cli import main, make_parser, spec_from_args
from builder.export import needed_definitions
from builder.spec import BLOCKS, FORMS, STEMS, STRIDE_ON

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"
FORM_CLASSES = {key: cls.__name__ for key, cls in blocks.BLOCK_CLASSES.items()}
PRESET_FORMS = list(itertools.product(sorted(PRESETS), "abc"))


# One intra-op thread for the interpreters started, as tests/conftest.py sets for the test
# workers: two workers share 2 cores, and more threads only make each small op wait.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def small(spec: ResNeXtSpec) -> ResNeXtSpec:
    """The same network at one block per stage and a small image: quick to run on 2 cores,
    with the preset's block type, stem, stride, cardinality, widths and form."""
    return spec.replace(depths=(1,) * len(spec.depths),
                        image_size=32 if spec.stem == "imagenet" else 16)


_loaded = itertools.count()


def load(source: str, directory: Path):
    """Import an exported file as a module of its own (not `builder`)."""
    path = directory / f"exported_{next(_loaded)}.py"
    path.write_text(source)
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def shapes(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(value.shape)) for key, value in model.state_dict().items()]


def check_round_trip(spec: ResNeXtSpec, directory: Path, seed: int = 0) -> None:
    """Keys and shapes, then bit-identical outputs with the builder's (randomised) weights."""
    module = load(export_source(spec), directory)
    assert module.ResNeXt is not blocks.ResNeXt  # its own classes, from its own file
    torch.manual_seed(seed)
    reference = randomize_(build_model(spec), seed=seed).eval()
    exported = module.build_model().eval()
    assert shapes(exported) == shapes(reference)
    exported.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(2, spec.in_channels, spec.image_size, spec.image_size,
                         generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected, got = reference(images), exported(images)
    assert got.dtype == torch.float32 and got.shape == (2, spec.num_classes)
    assert torch.equal(got, expected)


def ruff(directory: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), "check", "--no-cache", *options, str(directory)],
                          capture_output=True, text=True)


def script_output(spec: ResNeXtSpec) -> str:
    """What an exported file prints when run as a script."""
    return f"output shape: (2, {spec.num_classes})\nparameters: {count_params(spec):,}\n"


RUN_SCRIPTS = """
import runpy, sys
for path in sys.argv[1:]:
    print("==", path)
    runpy.run_path(path, run_name="__main__")
print("== builder imported:", "builder" in sys.modules)
"""


def run_scripts(paths: list[Path], cwd: Path) -> dict[str, str]:
    """Run each file as `__main__` in one fresh, isolated interpreter (-I: no PYTHONPATH, no
    current directory on sys.path, so `builder` cannot be imported). Output per file."""
    done = subprocess.run([sys.executable, "-I", "-c", RUN_SCRIPTS, *map(str, paths)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    chunks = done.stdout.split("== ")[1:]
    assert chunks[-1] == "builder imported: False\n"
    return {chunk.split("\n", 1)[0]: chunk.split("\n", 1)[1] for chunk in chunks[:-1]}


# -- what the source is made of -----------------------------------------------------------------
@pytest.mark.parametrize("block, form", list(itertools.product(BLOCKS, "abc")))
def test_source_copies_only_the_needed_definitions_verbatim(block, form):
    spec = ResNeXtSpec(block=block, form=form, cardinality=2, width_per_group=8)
    source = export_source(spec)
    tree = ast.parse(source)
    names = needed_definitions(block, form)
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
    path_class = {"bottleneck": "BottleneckPath", "basic": "BasicPath"}[block]
    expected = ["conv3x3", "conv1x1"] + ([path_class] if form != "c" else []) + [
        FORM_CLASSES[block, form], "ResNeXt", "build_model"]
    assert defined == expected
    assert [n for n in names if n != "BLOCK_CLASSES"] == expected[:-1]
    for name in expected[:-1]:  # the builder's definitions, unchanged
        assert inspect.getsource(getattr(blocks, name)) in source
    for other in set(FORM_CLASSES.values()) - {FORM_CLASSES[block, form]}:
        assert f"class {other}(" not in source
    imports = [ast.unparse(node) for node in tree.body
               if isinstance(node, ast.Import | ast.ImportFrom)]
    assert imports == ["from __future__ import annotations", "import torch",
                       "from torch import nn"]
    assert ast.get_docstring(tree).startswith(f"{spec.name}, form ({form}), as one standalone")


def test_docstring_states_spec_params_macs_and_usage():
    spec = PRESETS["resnext50_32x4d"]
    doc = ast.get_docstring(ast.parse(export_source(spec)))
    assert "    parameters      25,028,904" in doc
    assert f"    multiply-adds   {count_macs(spec):,} (4.23 G) for one 224x224 image" in doc
    assert "    python model.py" in doc and "    model = build_model().eval()" in doc
    assert "logits = model(images)  # (N, 3, 224, 224) -> (N, 1000)" in doc
    spec_json = doc[doc.index("    {"):doc.rindex("}") + 1]
    assert ResNeXtSpec.from_json(spec_json) == spec


def test_build_model_holds_the_spec_values_as_literals():
    spec = PRESETS["resnext29_16x64d"].replace(form="b", zero_init_residual=True)
    tree = ast.parse(export_source(spec))
    function = next(n for n in tree.body if getattr(n, "name", "") == "build_model")
    call = function.body[-1].value
    values = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert values == {name: getattr(spec, name) for name in (
        "block", "form", "cardinality", "width_per_group", "depths", "num_classes",
        "in_channels", "stem", "stem_width", "stride_on", "zero_init_residual")}
    parameters = inspect.signature(blocks.ResNeXt.__init__).parameters
    assert list(values) == [name for name in parameters if name in spec.to_dict()]
    assert {name: p.default for name, p in parameters.items()
            if name != "self" and name not in values} == {"init_weights": True}  # left default
    one_stage = export_source(spec.replace(depths=(2,)))
    assert "        depths=(2,),  # blocks per stage\n" in one_stage  # a tuple, not (2)


# -- fidelity -----------------------------------------------------------------------------------
def test_every_preset_and_form_passes_ruff(tmp_path):
    for name, form in PRESET_FORMS:
        spec = PRESETS[name].replace(form=form)
        (tmp_path / f"{name}_{form}.py").write_text(export_source(spec))
        if spec.block == "bottleneck":
            spec = spec.replace(stride_on="1x1", zero_init_residual=True)
            (tmp_path / f"{name}_{form}_v1.py").write_text(export_source(spec))
    assert len(list(tmp_path.iterdir())) == 36 + 30
    strict = ruff(tmp_path, "--config", str(ROOT / "pyproject.toml"))  # E F W I B UP, 100 cols
    assert strict.returncode == 0, strict.stdout[-3000:]
    default = ruff(tmp_path, "--isolated")  # ruff's own defaults, as a user would run it
    assert default.returncode == 0, default.stdout[-3000:]


@pytest.mark.parametrize("name, form", PRESET_FORMS)
def test_round_trip_every_preset_and_form(name, form, tmp_path):
    check_round_trip(small(PRESETS[name].replace(form=form)), tmp_path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_full_preset_keys_and_shapes_on_meta(name, tmp_path):
    """The full networks, form (c), without running them; forms (a) and (b) too where they
    build quickly (form (a) of ResNeXt-101 64x4d has 27,653 tensors; the round trip above
    runs every preset's forms (a) and (b) at one block per stage)."""
    spec = PRESETS[name]
    forms = "abc" if spec.cardinality <= 8 and sum(spec.depths) <= 16 else "c"
    for form in forms:
        spec = PRESETS[name].replace(form=form)
        module = load(export_source(spec), tmp_path)
        with torch.device("meta"):
            exported = module.build_model()
        assert shapes(exported) == shapes(build_model(spec, device="meta"))


def test_train_mode_and_zero_init_also_match(tmp_path):
    spec = small(PRESETS["resnext50_32x4d"]).replace(zero_init_residual=True, form="a",
                                                     cardinality=4)
    module = load(export_source(spec), tmp_path)
    torch.manual_seed(3)
    reference = build_model(spec)
    torch.manual_seed(3)
    exported = module.build_model()
    # same initialisation, random stream for random stream, zero-init BNs included
    assert all(torch.equal(a, b) for a, b in zip(exported.state_dict().values(),
                                                  reference.state_dict().values(), strict=True))
    assert torch.count_nonzero(exported.layer1[0].bn3.weight) == 0
    images = torch.randn(4, 3, 32, 32)
    assert torch.equal(exported.train()(images), reference.train()(images))


@st.composite
def specs(draw) -> ResNeXtSpec:
    """Small valid specs over every choice: quick to build and run."""
    block = draw(st.sampled_from(BLOCKS))
    return ResNeXtSpec(
        cardinality=draw(st.integers(1, 6)),
        width_per_group=draw(st.integers(1, 8)),
        depths=tuple(draw(st.lists(st.integers(1, 2), min_size=1, max_size=4))),
        form=draw(st.sampled_from(tuple(FORMS))),
        block=block,
        stem=draw(st.sampled_from(STEMS)),
        stride_on=draw(st.sampled_from(STRIDE_ON)) if block == "bottleneck" else "3x3",
        num_classes=draw(st.integers(1, 12)),
        in_channels=draw(st.integers(1, 4)),
        image_size=draw(st.integers(8, 40)),
        stem_width=draw(st.integers(1, 24)),
        zero_init_residual=draw(st.booleans()),
    )


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs())
def test_round_trip_random_specs(spec, tmp_path):
    source = export_source(spec)
    path = tmp_path / "random_spec.py"
    path.write_text(source)
    assert ruff(path, "--config", str(ROOT / "pyproject.toml")).returncode == 0
    check_round_trip(spec, tmp_path, seed=spec.cardinality)


# Each preset's (block, stem, stride) and the stride on the 1x1, in every form, small.
SCRIPT_SPECS = [
    small(PRESETS[name]).replace(form=form, stride_on=stride_on, cardinality=4,
                                 width_per_group=4)
    for name, stride_on in (("resnext50_32x4d", "3x3"), ("resnet18", "3x3"),
                            ("resnext29_8x64d", "3x3"), ("resnext50_32x4d", "1x1"))
    for form in "abc"]


def test_script_specs_cover_every_preset_structure():
    structure = {(s.block, s.stem, s.stride_on, s.form) for s in SCRIPT_SPECS}
    for name, form in PRESET_FORMS:
        spec = PRESETS[name]
        assert (spec.block, spec.stem, spec.stride_on, form) in structure
    assert len(structure) == len(SCRIPT_SPECS) == 12


@settings(max_examples=1, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(specs(), min_size=4, max_size=4))
def test_files_run_as_scripts_in_a_fresh_interpreter(drawn, tmp_path):
    """Every preset's block type, stem and stride in every form, and random specs, each file
    run as __main__ in one fresh interpreter that cannot import `builder`."""
    cases = {}
    for i, spec in enumerate(SCRIPT_SPECS + drawn):
        path = tmp_path / f"model_{i}.py"
        path.write_text(export_source(spec))
        cases[str(path)] = script_output(spec)
    assert run_scripts(list(map(Path, cases)), tmp_path) == cases


def test_python_runs_the_file(tmp_path):
    """`python model.py`, exactly as a user would, in a directory with only that file."""
    spec = small(PRESETS["resnext50_32x4d"])
    (tmp_path / "model.py").write_text(export_source(spec))
    done = subprocess.run([sys.executable, "-I", "model.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=ONE_THREAD)
    assert (done.returncode, done.stdout, done.stderr) == (0, script_output(spec), "")


# -- nothing a user types reaches the source ----------------------------------------------------
class SneakyStr(str):
    def __repr__(self):
        return "__import__('os').system('echo pwned')"

    __str__ = __repr__


class SneakyInt(int):
    def __repr__(self):
        return "__import__('os').system('echo pwned')"

    __str__ = __repr__
    __format__ = lambda self, spec: self.__repr__()  # noqa: E731


def test_subclassed_values_write_only_canonical_literals():
    plain = PRESETS["resnext50_32x4d"].replace(form="b")
    sneaky = plain.replace(form=SneakyStr("b"), stem=SneakyStr("imagenet"),
                           cardinality=SneakyInt(32), depths=(SneakyInt(3), 4, 6, 3))
    assert sneaky == plain  # the spec accepts them: they compare equal
    assert export_source(sneaky) == export_source(plain)
    assert "pwned" not in export_source(sneaky) + export_json(sneaky)


@pytest.mark.parametrize("field, value", [
    ("cardinality", "32); import os; os.system('x')  #"),
    ("form", "c\"); import os  #"),
    ("depths", (3, "4")),
    ("num_classes", 10**9),
    ("zero_init_residual", "False"),
    ("stride_on", "1x1"),  # with block="basic": no 1x1 conv to put it on
])
def test_a_spec_altered_after_validation_is_refused(field, value):
    spec = PRESETS["resnet18"].replace()  # a copy
    object.__setattr__(spec, field, value)  # bypasses __post_init__
    with pytest.raises(SpecError):
        export_source(spec)
    with pytest.raises(SpecError):
        export_json(spec)


def test_export_wants_a_spec():
    with pytest.raises(TypeError, match="ResNeXtSpec"):
        export_source({"cardinality": 32})


# -- JSON ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    spec = PRESETS[name].replace(form="a", zero_init_residual=True)
    text = export_json(spec)
    assert ResNeXtSpec.from_json(text) == spec
    assert json.loads(text) == spec.to_dict()


def test_json_round_trip_through_the_cli(tmp_path, capsys):
    spec = PRESETS["resnext101_32x8d"].replace(form="b", stride_on="1x1", num_classes=37)
    path = tmp_path / "spec.json"
    argv = ["export", "--preset", "resnext101_32x8d", "--form", "b", "--stride-on", "1x1",
            "--num-classes", "37", "--format", "json", "-o", str(path)]
    assert main(argv) == 0
    assert capsys.readouterr().out == f"wrote {path}: {spec.name}, form (b), json\n"
    assert path.read_text() == export_json(spec)
    # --config loads it back, for every subcommand
    assert spec_from_args(make_parser().parse_args(["info", "--config", str(path)])) == spec
    assert main(["info", "--config", str(path), "--json"]) == 0
    assert ResNeXtSpec.from_dict(json.loads(capsys.readouterr().out)["spec"]) == spec
    # and the source exported from the config is the source of the spec
    assert main(["export", "--config", str(path), "-o", str(tmp_path / "model.py")]) == 0
    assert (tmp_path / "model.py").read_text() == export_source(spec)


def test_cli_format_from_suffix_and_stdout(tmp_path, capsys):
    assert main(["export", "--preset", "resnet18", "-o", str(tmp_path / "r18.json")]) == 0
    assert ResNeXtSpec.from_json((tmp_path / "r18.json").read_text()) == PRESETS["resnet18"]
    capsys.readouterr()
    assert main(["export", "--preset", "resnet18"]) == 0
    assert capsys.readouterr().out == export_source(PRESETS["resnet18"])
    assert main(["export", "--preset", "resnet18", "--format", "json"]) == 0
    assert capsys.readouterr().out == export_json(PRESETS["resnet18"])


PYTHON_M_BUILDER = """
import runpy, sys
sys.modules.update(torchinfo=None, onnx=None, onnxscript=None)  # as if not installed
sys.argv = ["builder", *sys.argv[1:]]
runpy.run_module("builder", run_name="__main__", alter_sys=True)  # python -m builder ...
"""


def test_cli_module_entry_point_writes_the_file_without_torchinfo_or_onnx(tmp_path):
    spec = small(PRESETS["resnet34"].replace(form="b"))
    export = subprocess.run(
        [sys.executable, "-c", PYTHON_M_BUILDER, "export", "--preset", "resnet34", "--form", "b",
         "--depths", "1,1,1,1", "--image-size", "32", "-o", "model.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**ONE_THREAD, "PYTHONPATH": str(ROOT)})
    assert (export.returncode, export.stderr) == (0, "")
    assert export.stdout == f"wrote model.py: {spec.name}, form (b), py\n"
    assert (tmp_path / "model.py").read_text() == export_source(spec)


@pytest.mark.parametrize("argv, message", [
    (["--format", "onnx"], "error: --format onnx writes a file: give -o FILE.onnx"),
    (["--cardinality", "0"], "error: cardinality: 0 is not allowed; expected a whole number "
                             "from 1 to 4096"),
])
def test_cli_bad_export_options(argv, message, capsys):
    assert main(["export", "--preset", "resnet18"] + argv) == 2
    assert capsys.readouterr().err.strip() == message


# -- ONNX ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("missing", [("onnxscript",), ("onnx", "onnxscript")])
def test_onnx_unavailable_is_a_clear_error(missing, monkeypatch, tmp_path, capsys):
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportUnavailable) as info:
        export_onnx(PRESETS["resnet18"], path)
    assert str(info.value) == (
        f"ONNX export needs {' and '.join(missing)}, which "
        f"{'is' if len(missing) == 1 else 'are'} not installed: pip install onnx onnxscript")
    assert isinstance(info.value, RuntimeError) and not path.exists()
    assert main(["export", "--preset", "resnet18", "-o", str(path)]) == 1
    assert capsys.readouterr().err == f"error: {info.value}\n"


def test_onnx_bad_image_size_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="^image_size: 4 "):
        export_onnx(PRESETS["resnet18"], tmp_path / "x.onnx", image_size=4)


@pytest.mark.slow  # torch.onnx's exporter traces for some 10-20 s a model on 2 cores
@pytest.mark.filterwarnings("ignore:.*LeafSpec:FutureWarning")  # raised inside torch.onnx
@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d"])
def test_onnx_export_passes_the_checker_and_computes_the_model(name, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from onnx.reference import ReferenceEvaluator

    spec = PRESETS[name].replace(image_size=32)  # the trace does not depend on the size
    model = randomize_(build_model(spec), seed=1).eval()
    path = export_onnx(spec, str(tmp_path / f"{name}.onnx"), state_dict=model.state_dict())
    assert path == tmp_path / f"{name}.onnx" and sorted(p.name for p in tmp_path.iterdir()) == [
        f"{name}.onnx"]  # one file, weights inside
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [(v.name, dims(v)) for v in proto.graph.input] == [("images", ["batch", 3, 32, 32])]
    assert [(v.name, dims(v)) for v in proto.graph.output] == [("logits", ["batch", 1000])]
    convs = [node for node in proto.graph.node if node.op_type == "Conv"]
    groups = Counter(next((a.i for a in node.attribute if a.name == "group"), 1) for node in convs)
    modules = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert groups == Counter(m.groups for m in modules)  # resnext50: 16 convs with groups=32
    assert len(convs) == 53

    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    (logits,) = ReferenceEvaluator(proto).run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = model(images)
    assert logits.shape == (3, 1000)  # a batch of 3, though traced with 2
    error = (torch.from_numpy(logits) - expected).abs().max() / expected.abs().max()
    assert error < 1e-4  # the BNs folded into the convolutions: float rounding only
