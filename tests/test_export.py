"""builder.export: the standalone source, the spec as JSON, ONNX.

The source's fidelity. Every preset x form (12 x 3), each at full size and at small size
(`small`: one block per stage and a 32x32 image, 16x16 for CIFAR; the preset's block type,
stem, stride, C, d and widths kept):
- passes `ruff check` with the project's pyproject.toml and with ruff's defaults (both sizes,
  and at full size the bottleneck presets with the stride on the 1x1 and zero-init too);
- compiles and imports as a module of its own, and its model has build_model(spec)'s
  state_dict keys and shapes (full size: on the meta device, no forward) and, at small size
  with the same weights, bit-identical float32 outputs on CPU;
- runs as a script: the 36 small files, the 3 forms at small size with the stride on the 1x1,
  and 4 random small specs, each as `__main__` in one fresh interpreter that cannot import
  `builder` (about 5 s in all on 2 cores, most of it the interpreter importing torch once).
  Full-size files are not run as scripts: their forward passes on a random batch take
  seconds to minutes each on 2 cores (form (a) of ResNeXt-101 64x4d: 14,939 modules), and
  what a full-size script does beyond the small one is its numbers, checked above.
Random valid specs: 10 small ones through the whole round trip; and 40 drawn over the FULL
range of every field (builder.spec.LIMITS, the extremes included), whose files must pass ruff
and compile and carry the spec exactly (no model is built for those).
"""

import ast
import importlib.util
import inspect
import itertools
import json
import os
import subprocess
import sys
import tempfile
import types
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
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
from builder import export as export_module
from builder.cli import main, make_parser, spec_from_args
from builder.export import LINE_LENGTH, STANDALONE_ARGS, _standalone_docstring, needed_definitions
from builder.guards import ResourceLimitError, check
from builder.spec import BLOCKS, FORMS, LIMITS, STEMS, STRIDE_ON

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
        FORM_CLASSES[block, form], "ResNeXt", "build_model", "load_weights"]
    assert defined == expected
    assert [n for n in names if n != "BLOCK_CLASSES"] == expected[:-2]
    for name in expected[:-3]:  # the builder's definitions, unchanged
        assert inspect.getsource(getattr(blocks, name)) in source
    # ResNeXt: every line as in blocks.py but for the adapted entries of its docstring
    original = inspect.getsource(blocks.ResNeXt)
    exported = source[source.index("class ResNeXt("):source.index("\n\n\ndef build_model")] + "\n"
    assert without_entries(exported) == without_entries(original)
    exported_class = next(n for n in tree.body if getattr(n, "name", "") == "ResNeXt")
    original_class = ast.parse(original).body[0]
    assert ast.dump(exported_class.body[0]) != ast.dump(original_class.body[0])  # the doc
    assert [ast.dump(n) for n in exported_class.body[1:]] == [  # the code: the same tree
        ast.dump(n) for n in original_class.body[1:]]
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


def without_entries(source: str) -> str:
    """The source without the docstring entries the export adapts (name: and the more
    indented lines after it)."""
    out, skipping = [], None
    for line in source.split("\n"):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if skipping is not None and stripped and indent > skipping:
            continue
        skipping = None
        if any(stripped.startswith(f"{name}: ") for name in STANDALONE_ARGS):
            skipping = indent
            continue
        out.append(line)
    return "\n".join(out)


def resnext_docstring_entries(source: str) -> dict[str, str]:
    """ResNeXt's Args entries in a source, each unwrapped to one line."""
    doc = ast.get_docstring(next(n for n in ast.parse(source).body
                                 if getattr(n, "name", "") == "ResNeXt"))
    entries, name = {}, None
    for line in doc.split("Args:\n", 1)[1].splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            name, text = line.strip().split(": ", 1)
            entries[name] = text
        elif name and line.strip():
            entries[name] += " " + line.strip()
    return entries


@pytest.mark.parametrize("block, form", list(itertools.product(BLOCKS, "abc")))
def test_resnext_docstring_reads_on_its_own(block, form):
    """blocks.py's ResNeXt docstring points to its module docstring for the forms and to
    builder's meta-device use of init_weights; in the file, those entries say which block and
    form the file has. Every other entry is blocks.py's."""
    source = export_source(ResNeXtSpec(block=block, form=form, cardinality=4))
    entries = resnext_docstring_entries(source)
    original = resnext_docstring_entries(inspect.getsource(blocks))
    assert list(entries) == list(original)
    assert {k: v for k, v in entries.items() if k not in STANDALONE_ARGS} == {
        k: v for k, v in original.items() if k not in STANDALONE_ARGS}
    block_class = FORM_CLASSES[block, form]
    assert entries["block"] == f'"{block}", the one block type in this file (see BLOCK_CLASSES).'
    assert entries["form"].startswith(f'"{form}", the one form in this file: class '
                                      f"{block_class}. The paper's three forms compute the same "
                                      "function: (a) C paths summed, (b) C paths concatenated,")
    assert entries["init_weights"] == ("apply torchvision's initialisation. Default True; False "
                                       "leaves PyTorch's defaults (quicker when weights are "
                                       "loaded next).")
    doc = ast.get_docstring(next(n for n in ast.parse(source).body
                                 if getattr(n, "name", "") == "ResNeXt"))
    for pointer in ("module docstring", "meta device", "builder uses"):
        assert pointer not in doc
    assert f"class {block_class}(" in source
    assert f"BLOCK_CLASSES = {{\n    ({block!r}, {form!r}): {block_class},\n}}".replace(
        "'", '"') in source


def test_a_changed_blocks_docstring_is_an_error_not_a_silent_copy():
    node = ast.parse(inspect.getsource(blocks.ResNeXt)).body[0]
    segment = inspect.getsource(blocks.ResNeXt)
    first_line = node.body[0].lineno - 1
    lines = segment.split("\n")
    form_line = next(i for i, line in enumerate(lines) if line.lstrip().startswith("form: "))
    assert form_line > first_line
    changed = "\n".join(lines[:form_line] + lines[form_line + 1:])  # the entry removed
    changed_node = ast.parse(changed).body[0]
    with pytest.raises(RuntimeError, match="has 0 entries for 'form'; update builder.export"):
        _standalone_docstring(changed, changed_node, "bottleneck", "c")


# -- fidelity -----------------------------------------------------------------------------------
def test_every_preset_and_form_passes_ruff(tmp_path):
    for name, form in PRESET_FORMS:
        spec = PRESETS[name].replace(form=form)
        (tmp_path / f"{name}_{form}.py").write_text(export_source(spec))
        (tmp_path / f"{name}_{form}_small.py").write_text(export_source(small(spec)))
        if spec.block == "bottleneck":
            spec = spec.replace(stride_on="1x1", zero_init_residual=True)
            (tmp_path / f"{name}_{form}_v1.py").write_text(export_source(spec))
    assert len(list(tmp_path.iterdir())) == 36 + 36 + 30
    for path in tmp_path.iterdir():
        compile(path.read_text(), str(path), "exec")
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
    block = draw(st.sampled_from(tuple(BLOCKS)))
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


def _bounds(name: str) -> st.SearchStrategy[int]:
    return st.integers(*LIMITS[name])


@st.composite
def full_range_specs(draw) -> ResNeXtSpec:
    """Any valid spec: every field over its whole allowed range (builder.spec.LIMITS)."""
    block = draw(st.sampled_from(tuple(BLOCKS)))
    return ResNeXtSpec(
        cardinality=draw(_bounds("cardinality")),
        width_per_group=draw(_bounds("width_per_group")),
        depths=tuple(draw(st.lists(_bounds("depth"), min_size=LIMITS["stages"][0],
                                   max_size=LIMITS["stages"][1]))),
        form=draw(st.sampled_from(tuple(FORMS))),
        block=block,
        stem=draw(st.sampled_from(STEMS)),
        stride_on=draw(st.sampled_from(STRIDE_ON)) if block == "bottleneck" else "3x3",
        num_classes=draw(_bounds("num_classes")),
        in_channels=draw(_bounds("in_channels")),
        image_size=draw(_bounds("image_size")),
        stem_width=draw(_bounds("stem_width")),
        zero_init_residual=draw(st.booleans()),
    )


def _extreme(end: int, block: str, form: str) -> ResNeXtSpec:
    """Every field at the low (end=0) or high (end=1) end of its range."""
    pick = {name: LIMITS[name][end] for name in ("cardinality", "width_per_group",
                                                  "num_classes", "in_channels", "image_size",
                                                  "stem_width")}
    return ResNeXtSpec(**pick, depths=(LIMITS["depth"][end],) * LIMITS["stages"][end],
                       block=block, form=form, stride_on="1x1" if block == "bottleneck" else "3x3",
                       stem="imagenet", zero_init_residual=bool(end))


EXTREMES = [_extreme(end, block, form) for end in (0, 1) for block in BLOCKS for form in "abc"]


@settings(max_examples=1, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(drawn=st.lists(full_range_specs(), min_size=40, max_size=40))
@example(drawn=EXTREMES)
def test_any_valid_spec_exports_a_file_that_passes_ruff_and_compiles(drawn, tmp_path):
    """Specs drawn over the full range of every field, the extremes as an explicit example:
    no model is built (most of them would not fit in memory). One ruff run over the batch."""
    directory = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example: hypothesis reruns
    for i, spec in enumerate(drawn):
        source = export_source(spec)
        path = directory / f"spec_{i}.py"
        path.write_text(source)
        compile(source, str(path), "exec")
        tree = ast.parse(source)
        doc = ast.get_docstring(tree)
        assert ResNeXtSpec.from_json(doc[doc.index("    {"):doc.rindex("}") + 1]) == spec
        assert f"    parameters      {count_params(spec):,}\n" in doc
        assert f"    multiply-adds   {count_macs(spec):,} (" in doc
        function = next(n for n in tree.body if getattr(n, "name", "") == "build_model")
        values = {k.arg: ast.literal_eval(k.value) for k in function.body[-1].value.keywords}
        assert ResNeXtSpec(**values, image_size=spec.image_size) == spec
        assert max(map(len, source.splitlines())) <= LINE_LENGTH
    strict = ruff(directory, "--config", str(ROOT / "pyproject.toml"))
    assert strict.returncode == 0, strict.stdout[-3000:]


def test_the_longest_generated_lines_fit_and_wrap_readably():
    spec = ResNeXtSpec(cardinality=4096, width_per_group=4096, depths=(128,) * 8,
                       image_size=2048, num_classes=100_000, in_channels=64, stem_width=1024)
    doc = ast.get_docstring(ast.parse(export_source(spec)))
    assert (f"    multiply-adds   {count_macs(spec):,} ({count_macs(spec) / 1e9:,.2f} G)\n"
            "                    for one 2048x2048 image; FLOPs = 2 x MACs\n") in doc


# Every preset x form at small size, and the stride on the 1x1 in every form.
SCRIPT_SPECS = [small(PRESETS[name].replace(form=form)) for name, form in PRESET_FORMS] + [
    small(PRESETS["resnext50_32x4d"]).replace(form=form, stride_on="1x1") for form in "abc"]


def test_script_specs_cover_every_preset_and_form():
    for name, form in PRESET_FORMS:
        assert small(PRESETS[name].replace(form=form)) in SCRIPT_SPECS
    structure = {(s.block, s.stem, s.stride_on, s.form) for s in SCRIPT_SPECS}
    assert structure == {(b, stem, stride, f) for b, stem, stride in (
        ("bottleneck", "imagenet", "3x3"), ("basic", "imagenet", "3x3"),
        ("bottleneck", "cifar", "3x3"), ("bottleneck", "imagenet", "1x1")) for f in "abc"}
    assert len(SCRIPT_SPECS) == 36 + 3


@settings(max_examples=1, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(specs(), min_size=4, max_size=4))
def test_files_run_as_scripts_in_a_fresh_interpreter(drawn, tmp_path):
    """Every preset x form at small size, the stride on the 1x1 in every form, and 4 random
    small specs: each file run as __main__ in one fresh interpreter that cannot import
    `builder` (one interpreter for all 43: torch is imported once)."""
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


@pytest.fixture
def onnx_importable(monkeypatch):
    """`import onnx` and `import onnxscript` succeed (empty stand-ins where they are not
    installed), so that what comes after the dependency check is tested everywhere."""
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


@pytest.fixture
def nothing_built(monkeypatch):
    """build_model (as builder.export calls it) fails the test if it is called."""
    monkeypatch.setattr(export_module, "build_model",
                        mock.Mock(side_effect=AssertionError("a model was built")))


@pytest.mark.parametrize("where, reason", [
    ("missing/x.onnx", "No such file or directory"),
    ("", "Is a directory"),  # -o names the directory itself
    ("x\x00.onnx", "embedded null byte"),
])
def test_onnx_to_a_path_that_cannot_be_written_exits_2_before_building(
        where, reason, tmp_path, capsys, onnx_importable, nothing_built):
    target = str(tmp_path / where) if where else str(tmp_path)
    assert main(["export", "--preset", "resnet18", "--format", "onnx", "-o", target]) == 2
    assert capsys.readouterr() == ("", f"error: -o: cannot write {target!r}: {reason}\n")
    with pytest.raises(OSError) as info:
        export_onnx(PRESETS["resnet18"], target)
    assert info.value.strerror == reason
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind


def test_onnx_checks_the_path_without_touching_a_file_there(tmp_path, onnx_importable,
                                                            monkeypatch):
    path = tmp_path / "old.onnx"
    path.write_bytes(b"an earlier export")
    monkeypatch.setattr(export_module, "build_model",
                        mock.Mock(side_effect=KeyboardInterrupt))  # stop right after the check
    with pytest.raises(KeyboardInterrupt):
        export_onnx(PRESETS["resnet18"], path)
    assert path.read_bytes() == b"an earlier export"  # there before: kept
    new = tmp_path / "new.onnx"
    with pytest.raises(KeyboardInterrupt):
        export_onnx(PRESETS["resnet18"], new)
    assert not new.exists()  # created by the check only: removed
    monkeypatch.setattr(export_module, "build_model", build_model)  # the real one again: a
    # state_dict that does not fit fails after it, before the export writes anything
    tiny = small(PRESETS["resnet18"]).replace(cardinality=2, width_per_group=4)
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict"):
        export_onnx(tiny, new, state_dict={"fc.weight": torch.zeros(1)})
    assert not new.exists()
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict"):
        export_onnx(tiny, path, state_dict={"fc.weight": torch.zeros(1)})
    assert path.read_bytes() == b"an earlier export"


def test_onnx_refuses_a_huge_spec_with_its_estimate_before_building(tmp_path, capsys,
                                                                     nothing_built):
    huge = PRESETS["resnext101_64x4d"].replace(cardinality=4096, width_per_group=4096)
    path = tmp_path / "huge.onnx"
    with pytest.raises(ResourceLimitError) as info:
        export_onnx(huge, path)
    with pytest.raises(ResourceLimitError) as expected:
        check(huge, batch_size=2)  # the estimate at the example batch the export traces
    assert str(info.value) == str(expected.value)
    assert str(info.value).startswith("params: 3.6e14 estimated, the limit is 1.0e9; memory: ")
    argv = ["export", "--preset", "resnext101_64x4d", "-C", "4096", "-d", "4096", "-o", str(path)]
    assert main(argv) == 2
    assert capsys.readouterr() == ("", f"error: {expected.value}\n")
    assert not path.exists()


@pytest.mark.parametrize("name, form", PRESET_FORMS)
def test_the_onnx_guard_passes_every_preset_and_form(name, form):
    check(PRESETS[name].replace(form=form), batch_size=2)  # raises if export_onnx would refuse


def test_onnx_bad_image_size_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="^image_size: 4 "):
        export_onnx(PRESETS["resnet18"], tmp_path / "x.onnx", image_size=4)


@pytest.mark.slow  # torch.onnx's exporter traces for some seconds even a small model
@pytest.mark.filterwarnings("ignore:.*LeafSpec:FutureWarning")  # raised inside torch.onnx
def test_onnx_export_passes_the_checker_and_computes_the_model(tmp_path):
    """ResNeXt-50 (32x4d)'s blocks, stem and head, one block per stage (a whole ResNeXt-50
    took 25-80 s here, mostly onnx's pure-Python reference evaluator)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from onnx.reference import ReferenceEvaluator

    spec = PRESETS["resnext50_32x4d"].replace(depths=(1, 1, 1, 1), image_size=32)
    model = randomize_(build_model(spec), seed=1).eval()
    path = export_onnx(spec, str(tmp_path / "m.onnx"), state_dict=model.state_dict())
    assert path == tmp_path / "m.onnx" and sorted(p.name for p in tmp_path.iterdir()) == [
        "m.onnx"]  # one file, weights inside
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [(v.name, dims(v)) for v in proto.graph.input] == [("images", ["batch", 3, 32, 32])]
    assert [(v.name, dims(v)) for v in proto.graph.output] == [("logits", ["batch", 1000])]
    convs = [node for node in proto.graph.node if node.op_type == "Conv"]
    groups = Counter(next((a.i for a in node.attribute if a.name == "group"), 1) for node in convs)
    assert groups == Counter({1: 13, 32: 4})  # stem, 3 1x1s per block, 4 shortcuts; 4 grouped
    assert groups == Counter(m.groups for m in model.modules()
                             if isinstance(m, torch.nn.Conv2d))

    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    (logits,) = ReferenceEvaluator(proto).run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = model(images)
    assert logits.shape == (3, 1000)  # a batch of 3, though traced with 2
    error = (torch.from_numpy(logits) - expected).abs().max() / expected.abs().max()
    assert error < 1e-4  # the BNs folded into the convolutions: float rounding only
