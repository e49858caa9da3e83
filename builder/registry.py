"""The block forms and block types, each described once (timm's `_block_registry` is the model).

A form says how the C paths of a block come together (`merge`):
  "sum"    each path runs to the block's output width, the outputs are added (form (a));
  "concat" each path stops at width d, the outputs are concatenated, one layer follows (b);
  "dense"  the paths are one layer each: a grouped 3x3 between dense 1x1s (c).
Everything form-specific elsewhere follows `merge`: convert maps the weights by it, the guards
count memory by it, the graph draws by it. So a new form is its class in builder/blocks.py (or
anywhere) plus one `register_form` call; tests/test_registry.py registers a toy form and finds
it in the spec's choices, the CLI, the guards, the drawings and the page without other edits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import nn

from . import blocks

MERGES = ("sum", "concat", "dense")


@dataclass(frozen=True)
class BlockType:
    """A block's layer pattern: the bottleneck (1x1, 3x3, 1x1) or the basic block (3x3, 3x3)."""

    key: str
    label: str  # one line for choices: what the layers are
    convs: int  # convolutions on the main branch (3 or 2): the network's name counts them
    expansion: int  # block output = expansion x the stage's planes
    # form (c)'s layer names, for convert: the layers split by path along their outputs, and
    # the last conv (split along its inputs in a "sum" form) and its BN
    split_layers: tuple[str, ...]
    last_conv: str
    last_bn: str
    note: str  # for the exported file's comments


@dataclass(frozen=True)
class Implementation:
    """One form of one block type: its module class, and what it costs in modules and calls.

    modules: (per path, per block besides the paths), the block itself included: what
        `len(list(model.modules()))` adds per block (the guards count without building).
    calls: (per path, per block besides the paths): module calls of one forward of a block
        without projection (convs, BNs, ReLUs, adds); the timing estimate counts launches.
    """

    module: type[nn.Module]
    modules: tuple[int, int]
    calls: tuple[int, int]


@dataclass(frozen=True)
class Form:
    """A block form: the same function as the others, written another way."""

    key: str
    title: str  # "aggregated paths"
    description: str  # one line: choices, the network drawing, exports
    merge: str  # "sum", "concat" or "dense" (module docstring)
    lesson: str  # one sentence for Learn and the timing view: what this form costs
    # fraction of the device's matmul peak that the form reaches with paths 4 wide (d=4):
    # the timing estimate's prior; benchmarks/RESULTS.md says where the numbers come from
    efficiency: Mapping[str, float] = field(default_factory=dict)
    implementations: Mapping[str, Implementation] = field(default_factory=dict)


BLOCK_TYPES: dict[str, BlockType] = {
    "bottleneck": BlockType("bottleneck", "bottleneck: 1×1, 3×3, 1×1", 3, 4,
                            ("conv1", "bn1", "conv2", "bn2"), "conv3", "bn3",
                            "1x1, 3x3, 1x1; block output = 4 x the stage's planes"),
    "basic": BlockType("basic", "basic: 3×3, 3×3 (ResNet-18/34)", 2, 1,
                       ("conv1", "bn1"), "conv2", "bn2",
                       "3x3, 3x3 (ResNet-18/34); C paths merge into one dense block"),
}
FORMS: dict[str, Form] = {}


def register_form(form: Form) -> Form:
    """Add a form (or replace one of the same key). Every block type needs an implementation."""
    if form.merge not in MERGES:
        raise ValueError(f"form {form.key!r}: merge must be one of {', '.join(MERGES)}")
    missing = [b for b in BLOCK_TYPES if b not in form.implementations]
    if missing:
        raise ValueError(f"form {form.key!r}: no implementation for {', '.join(missing)}")
    FORMS[form.key] = form
    for block, impl in form.implementations.items():
        blocks.BLOCK_CLASSES[block, form.key] = impl.module
    return form


def unregister_form(key: str) -> None:
    FORMS.pop(key)
    for block in BLOCK_TYPES:
        blocks.BLOCK_CLASSES.pop((block, key), None)


@contextmanager
def registered(form: Form) -> Iterator[Form]:
    """A form registered for the duration of a `with` block (tests)."""
    register_form(form)
    try:
        yield form
    finally:
        unregister_form(form.key)


def implementation(block: str, form: str) -> Implementation:
    return FORMS[form].implementations[block]


def of_module(module: nn.Module) -> tuple[BlockType, Form] | None:
    """The (block type, form) whose class `module` is, or None for any other module."""
    for form in FORMS.values():
        for block, impl in form.implementations.items():
            if type(module) is impl.module:
                return BLOCK_TYPES[block], form
    return None


register_form(Form(
    "a", "aggregated paths", "aggregated paths: C paths of 1x1, 3x3, 1x1, outputs summed",
    "sum",
    "C separate paths: about C times the kernel launches of (c), each a tiny convolution.",
    {"cpu": 0.03, "cuda": 0.012},
    {"bottleneck": Implementation(blocks.AggregatedBottleneck, (7, 4), (7, 3)),
     "basic": Implementation(blocks.AggregatedBasicBlock, (5, 4), (4, 3))}))
register_form(Form(
    "b", "early concatenation",
    "early concatenation: C paths of 1x1, 3x3, concatenated, then one 1x1", "concat",
    "C paths up to the concatenation, then one dense layer: fewer launches than (a), still "
    "many small convolutions.",
    {"cpu": 0.045, "cuda": 0.03},
    {"bottleneck": Implementation(blocks.ConcatBottleneck, (6, 5), (5, 5)),
     "basic": Implementation(blocks.ConcatBasicBlock, (4, 5), (2, 5))}))
register_form(Form(
    "c", "grouped convolution",
    "grouped convolution: 1x1, 3x3 with groups=C, 1x1 (the fast form)", "dense",
    "one grouped convolution: the fewest launches, the form people ship.",
    {"cpu": 0.4, "cuda": 0.12},
    {"bottleneck": Implementation(blocks.Bottleneck, (0, 8), (0, 10)),
     "basic": Implementation(blocks.BasicBlock, (0, 6), (0, 7))}))
