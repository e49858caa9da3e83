"""builder.registry: every registered form and block type builds, converts, draws, counts and
exports; a toy form registered here reaches the spec, the CLI, the guards and the drawings
without other edits."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import pytest
import torch

from builder import blocks, guards, registry
from builder.cli import main, make_parser
from builder.complexity import count_params
from builder.convert import convert, randomize_
from builder.export import export_source
from builder.graph import draw_block, draw_network
from builder.network import build_model
from builder.spec import FIELDS, ResNeXtSpec, SpecError

# small enough to build every form in a fraction of a second: 2 stages, C=4, d=2, 32x32
SMALL = dict(cardinality=4, width_per_group=2, depths=(2, 1), image_size=32, num_classes=7)
PAIRS = list(itertools.product(registry.BLOCK_TYPES, registry.FORMS))
# float64 through a few blocks: outputs near 1, rounding near 1e-16 per operation
BOUND_FLOAT64 = 1e-12
ROOT = Path(__file__).resolve().parents[1]


def _spec(block: str, form: str, **more) -> ResNeXtSpec:
    return ResNeXtSpec(block=block, form=form, **{**SMALL, **more})


def _output(model, seed=0):
    batch = torch.randn(2, 3, 32, 32, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.double().eval()(batch)


@pytest.mark.parametrize("block, form", PAIRS)
def test_every_registered_pair_builds_counts_and_is_guarded(block, form):
    spec = _spec(block, form)
    model = build_model(spec)
    impl = registry.implementation(block, form)
    assert all(type(m) is impl.module for m in model.layer1)
    assert guards.count_modules(spec) == len(list(model.modules()))
    assert count_params(spec) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("block, form", PAIRS)
def test_every_registered_pair_converts_to_every_other_form(block, form):
    source = randomize_(build_model(_spec(block, form)), seed=3).double()
    expected = _output(source)
    for other in registry.FORMS:
        got = _output(convert(source, other))
        assert (got - expected).abs().max().item() <= BOUND_FLOAT64, (form, other)


@pytest.mark.parametrize("block, form", PAIRS)
def test_every_registered_pair_draws(block, form):
    spec = _spec(block, form)
    source = draw_block(spec, stage=1).source
    assert f"form ({form})" in source
    assert registry.FORMS[form].description in draw_network(spec).source


@pytest.mark.parametrize("block, form", PAIRS)
def test_every_registered_pair_exports_the_same_model(block, form):
    spec = _spec(block, form)
    namespace: dict = {}
    exec(compile(export_source(spec), "model.py", "exec"), namespace)
    theirs = namespace["build_model"]().state_dict()
    ours = build_model(spec).state_dict()
    assert {k: tuple(v.shape) for k, v in theirs.items()} == {
        k: tuple(v.shape) for k, v in ours.items()}


# -- a toy form: form (c)'s layers under another class, registered for one test ------------------
class ToyBottleneck(blocks.Bottleneck):
    """Form (c) by another name: dense, so it maps, counts and draws as (c) does."""


class ToyBasicBlock(blocks.BasicBlock):
    pass


TOY = registry.Form(
    "t", "toy", "toy: form (c)'s layers in a class of its own", "dense",
    "a test form.", {},
    {"bottleneck": registry.Implementation(ToyBottleneck, (0, 8), (0, 10)),
     "basic": registry.Implementation(ToyBasicBlock, (0, 6), (0, 7))})


def test_a_toy_form_reaches_the_spec_cli_guards_and_drawings(capsys):
    assert "t" not in FIELDS["form"].values
    with pytest.raises(SpecError, match="form: 't' is not allowed"):
        ResNeXtSpec(form="t")
    with registry.registered(TOY):
        spec = _spec("bottleneck", "t")
        assert "t" in FIELDS["form"].values
        assert ("t", "(t) toy: form (c)'s layers in a class of its own") in FIELDS["form"].choices
        # the CLI's --form choices are made from the registry when the parser is made
        form_action = next(a for a in make_parser()._subparsers._group_actions[0]
                           .choices["info"]._actions if a.dest == "form")
        assert "t" in form_action.choices
        assert main(["info", "--form", "t", "--depths", "2,1", "-C", "4", "-d", "2",
                     "--image-size", "32", "--num-classes", "7", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["params"] == count_params(spec)
        model = build_model(spec)
        assert isinstance(model.layer1[0], ToyBottleneck)
        assert guards.check(spec).modules == len(list(model.modules()))
        assert "groups=4" in draw_block(spec, stage=1).source  # drawn as a dense form
        source = randomize_(build_model(_spec("bottleneck", "a")), seed=1).double()
        got = _output(convert(source, "t"))
        assert (got - _output(source)).abs().max().item() <= BOUND_FLOAT64
    assert "t" not in FIELDS["form"].values
    assert ("bottleneck", "t") not in blocks.BLOCK_CLASSES


def test_a_form_must_implement_every_block_type():
    half = registry.Form("h", "half", "half", "dense", "", {},
                         {"bottleneck": registry.Implementation(ToyBottleneck, (0, 8), (0, 10))})
    with pytest.raises(ValueError, match="no implementation for basic"):
        registry.register_form(half)
    assert "h" not in registry.FORMS
# -- size rules ------------------------------------------------------------------------------
def _code_files() -> list[Path]:
    files = sorted((ROOT / "builder").rglob("*.py")) + [ROOT / "app.py"]
    return files + sorted((ROOT / "ui").rglob("*.py"))


def test_no_function_over_100_lines_and_no_module_over_600():
    too_long = []
    for path in _code_files():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > 600:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 100:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                    f"{length} lines")
    assert too_long == []
