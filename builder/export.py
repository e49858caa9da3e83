"""spec -> one standalone Python file (needs only torch), the spec as JSON, and ONNX.

The Python file is not a second implementation. Its classes are builder/blocks.py's own
definitions, copied from `inspect.getsource(builder.blocks)`: the two conv helpers, the block
class of the spec's (block, form) and whatever it uses, and the `ResNeXt` network, found by
following the names each definition uses. Their code is copied unchanged; so are their
docstrings, except three argument entries of ResNeXt's (`block`, `form`, `init_weights`), which
in blocks.py point to its module docstring and to builder's own use of the meta device: in the
file they say which block and form it has (`_standalone_docstring`). What is written around
them is generated: a docstring, a `BLOCK_CLASSES` table with only the included block, a
`build_model()` with the spec's values, and a `__main__` that runs a random batch. Generated
lines fit in 100 columns, the project's ruff setting, for every valid spec.

Nothing a user types reaches the source. The spec is validated again, and every value written
is an exact int (or a bool) or a string taken from the fixed sets in builder.spec, never the
object the caller passed: a str or int subclass with a clever `__repr__` writes nothing.
"""

from __future__ import annotations

import ast
import errno
import functools
import inspect
import json
import math
import textwrap
import threading
from pathlib import Path

import torch

from . import blocks
from .complexity import network_counts
from .guards import check as check_resources
from .network import build_model
from .registry import BLOCK_TYPES, FORMS
from .spec import FIELDS, ResNeXtSpec, SpecError, spec_fields

ALLOWED_IMPORTS = {"__future__", "torch"}  # the exported file must need nothing else
LINE_LENGTH = 100  # pyproject.toml's [tool.ruff] line-length; tests/test_export.py runs ruff

# A short "why" for each argument of build_model(), as the file's comments (longer than the
# field's one-line help, which stands in for a field or value not listed here).
NOTES = {
    "cardinality": "C: parallel paths per block (the groups of the 3x3)",
    "width_per_group": "d: width of one path in stage 1; doubles with each stage",
    "depths": "blocks per stage",
    "num_classes": "classifier outputs",
    "in_channels": "image channels",
    "stem_width": "channels after the stem",
    "zero_init_residual": "start each block's last BN at 0 (block = identity)",
}
CHOICE_NOTES = {
    "block": {key: block.note for key, block in BLOCK_TYPES.items()},
    "form": {key: form.description for key, form in FORMS.items()},
    "stem": {"imagenet": "7x7/2 conv + 3x3/2 max-pool: a quarter of the image size",
             "cifar": "3x3/1 conv, no max-pool: the image size is kept"},
    "stride_on": {"3x3": "the stride 2 is on the 3x3 (paper, torchvision)",
                  "1x1": "the stride 2 is on the first 1x1 (ResNet v1)"},
}


class ExportUnavailable(RuntimeError):
    """An export whose dependencies are not installed (ONNX needs onnx and onnxscript)."""


# -- the spec, rebuilt from plain values -------------------------------------------------------
def _exact_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(name, value, "expected a whole number")
    return int.__int__(value)  # an exact int, whatever subclass came in


def _fixed_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if isinstance(value, str):
        plain = str.__str__(value)  # an exact str, whatever subclass came in
        for choice in choices:
            if choice == plain:
                return choice  # the constant from builder.spec, not the caller's object
    raise SpecError(name, value, "expected one of " + ", ".join(repr(c) for c in choices))


def canonical_spec(spec: ResNeXtSpec) -> ResNeXtSpec:
    """The same spec, rebuilt from exact ints, bools and the constants of builder.spec, and
    validated again (a spec altered after construction is caught here)."""
    if not isinstance(spec, ResNeXtSpec):
        raise TypeError(f"expected a ResNeXtSpec, got {type(spec).__name__}")
    values: dict = {}
    for info in spec_fields():
        value = getattr(spec, info.name)
        if info.kind == "int":
            values[info.name] = _exact_int(info.name, value)
        elif info.kind == "choice":
            values[info.name] = _fixed_choice(info.name, value, info.values)
        elif info.kind == "depths":
            if not isinstance(value, tuple | list):
                raise SpecError("depths", value, "expected a list of whole numbers, one per stage")
            values["depths"] = tuple(_exact_int(f"depths[{i}]", d) for i, d in enumerate(value))
        elif info.kind == "bool":
            if not isinstance(value, bool):
                raise SpecError(info.name, value, "expected true or false")
            values[info.name] = value is True
        else:  # a kind of field this exporter does not know how to write
            raise SpecError("spec", info.name, "unknown to builder.export")
    return ResNeXtSpec(**values)


def _literal(value) -> str:
    """Python source for a canonical value: bool, int, a fixed string, a tuple of ints."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a constant of builder.spec: letters, digits, "x"
    if isinstance(value, float) and math.isfinite(value):
        return repr(float.__float__(value))  # shortest round-trip form: 0.1, 1e-05
    if isinstance(value, tuple):
        return repr(tuple(int(v) for v in value))  # "(3,)" for one stage
    raise TypeError(f"no literal for {type(value).__name__}")


# -- the definitions of builder/blocks.py ------------------------------------------------------
_BLOCKS_LOCK = threading.Lock()


def _blocks_source() -> tuple[list[str], dict[str, ast.stmt], list[ast.stmt]]:
    """builder/blocks.py (`inspect.getsource` of the module) as lines, its top-level
    definitions by name in file order, and its import statements. Parsed once, under a lock:
    in CPython 3.11 two threads in ast.parse at once can fail with "AST constructor recursion
    depth mismatch" (gh-106905), and the app exports from several threads."""
    with _BLOCKS_LOCK:
        return _parse_blocks()


@functools.lru_cache(maxsize=1)
def _parse_blocks() -> tuple[list[str], dict[str, ast.stmt], list[ast.stmt]]:
    source = inspect.getsource(blocks)
    named, imports = {}, []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            named[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    named[target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(node)
    return source.splitlines(), named, imports


def _segment(node: ast.stmt) -> str:
    """The lines of a top-level statement, decorators included: for a class or a function,
    exactly what `inspect.getsource` gives (tests/test_export.py checks it)."""
    lines = _blocks_source()[0]
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[first - 1:node.end_lineno])


# ResNeXt's argument entries that the standalone file words differently (see the docstring of
# this module), each one paragraph, wrapped to LINE_LENGTH. {block} and {form} are the file's.
STANDALONE_ARGS = {
    "block": 'block: "{block}", the one block type in this file (see BLOCK_CLASSES).',
    "form": 'form: "{form}", the one form in this file: class {block_class}. The paper\'s three '
            "forms compute the same function: {forms}. ResNeXt Block Builder "
            "(builder/blocks.py) has all three.",
    "init_weights": "init_weights: apply torchvision's initialisation. Default True; False "
                    "leaves PyTorch's defaults (quicker when weights are loaded next).",
}
FORM_TEXT = {
    "bottleneck": "(a) C paths summed, (b) C paths concatenated, then one 1x1, (c) one 3x3 "
                  "with groups=C",
    "basic": "(a) C paths summed, (b) C paths concatenated, then one 3x3, (c) one dense "
             "block C*d wide (paper Fig. 4)",
}


def _standalone_docstring(segment: str, node: ast.ClassDef, block: str, form: str) -> str:
    """The ResNeXt class's source with the `STANDALONE_ARGS` entries of its docstring
    rewritten; code and every other line unchanged. An entry is its `name:` line and the
    more indented lines after it. Raises RuntimeError where an entry is missing (blocks.py
    changed: update STANDALONE_ARGS), so the file can never silently keep the old text."""
    doc = node.body[0]
    if not (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)):
        raise RuntimeError(f"builder/blocks.py: {node.name} has no docstring to adapt")
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = segment.split("\n")
    start, end = doc.lineno - first, doc.end_lineno - first  # the docstring's lines
    values = {"block": block, "form": form, "forms": FORM_TEXT[block],
              "block_class": blocks.BLOCK_CLASSES[block, form].__name__}
    for name, template in STANDALONE_ARGS.items():
        heads = [i for i in range(start, end + 1)
                 if lines[i].lstrip().startswith(f"{name}: ")]
        if len(heads) != 1:
            raise RuntimeError(f"builder/blocks.py: {node.name}'s docstring has {len(heads)} "
                               f"entries for {name!r}; update builder.export.STANDALONE_ARGS")
        head = heads[0]
        indent = lines[head][:len(lines[head]) - len(lines[head].lstrip())]
        stop = head + 1
        while stop < end and lines[stop].strip() and (
                len(lines[stop]) - len(lines[stop].lstrip()) > len(indent)):
            stop += 1
        entry = textwrap.wrap(template.format(**values), LINE_LENGTH, initial_indent=indent,
                              subsequent_indent=indent + "    ", break_long_words=False,
                              break_on_hyphens=False)
        lines[head:stop] = entry
        end += len(entry) - (stop - head)
    return "\n".join(lines)


def needed_definitions(block: str, form: str) -> list[str]:
    """Names of the builder.blocks definitions the (block, form) network needs, in file order:
    the block class, ResNeXt, and every top-level name they use. BLOCK_CLASSES is listed but
    not followed: the export writes it with the one block only."""
    named = _blocks_source()[1]
    todo = [blocks.BLOCK_CLASSES[block, form].__name__, blocks.ResNeXt.__name__]
    needed = set()
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        if name == "BLOCK_CLASSES":
            continue
        todo.extend(node.id for node in ast.walk(named[name])
                    if isinstance(node, ast.Name) and node.id in named)
    return [name for name, node in named.items() if name in needed]


def _imports() -> str:
    """blocks.py's import lines, as written there; each must be torch or __future__."""
    lines, _, nodes = _blocks_source()
    for node in nodes:
        modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                   else [node.module or ""])
        if any(m.split(".")[0] not in ALLOWED_IMPORTS for m in modules):
            raise RuntimeError(f"builder/blocks.py imports {modules}: the export would need "
                               "more than torch")
    return "\n".join(lines[nodes[0].lineno - 1:nodes[-1].end_lineno])


def _block_table(block: str, form: str) -> str:
    name = blocks.BLOCK_CLASSES[block, form].__name__
    return ("# The block class of each (block, form). builder/blocks.py has all six; this file\n"
            "# has only the one its network uses.\n"
            f"BLOCK_CLASSES = {{\n    ({_literal(block)}, {_literal(form)}): {name},\n}}")


# -- the generated parts -----------------------------------------------------------------------


def _fit(head: str, tail: str, indent: str) -> list[str]:
    """`head tail` on one line where it fits in LINE_LENGTH, else tail on a line of its own."""
    line = f"{head} {tail}"
    return [line] if len(line) <= LINE_LENGTH else [head, indent + tail]


def _docstring(spec: ResNeXtSpec) -> str:
    counts = network_counts(spec)
    size, channels = spec.image_size, spec.in_channels
    spec_lines = [f"        {json.dumps(key)}: {json.dumps(value)}"
                  for key, value in spec.to_dict().items()]
    return "\n".join([
        f'"""{spec.name}, form ({spec.form}), as one standalone PyTorch file.',
        "",
        "Exported by ResNeXt Block Builder. It needs only torch. The classes below are the",
        "builder's own definitions (builder/blocks.py), their code unchanged, with only the",
        "block this network uses; build_model() at the end holds the numbers of this network.",
        "",
        f"    form ({spec.form})        {FORMS[spec.form].description}",
        f"    parameters      {counts.params:,}",
        *_fit(f"    multiply-adds   {counts.macs:,} ({counts.macs / 1e9:,.2f} G)",
              f"for one {size}x{size} image; FLOPs = 2 x MACs", " " * 20),
        "",
        "Usage (this file saved as model.py):",
        "",
        "    python model.py     # builds the model, runs a random batch, prints shape and size",
        "",
        "    from model import build_model, load_weights",
        "    model = build_model().eval()",
        f"    logits = model(images)  # (N, {channels}, {size}, {size}) -> "
        f"(N, {spec.num_classes})",
        '    model = load_weights("weights.safetensors")  # trained weights, form '
        f'({spec.form}) keys',
        "",
        "The spec, as JSON (`python -m builder export --config spec.json` writes this file):",
        "",
        "    {",
        ",\n".join(spec_lines),
        "    }",
        '"""',
    ])


def _build_function(spec: ResNeXtSpec) -> str:
    """build_model(): every argument of ResNeXt that is a spec field, with the spec's value.
    Others (init_weights) keep their defaults; one without a default is an error here."""
    arguments = []
    fields = spec.to_dict()
    for name, parameter in list(inspect.signature(blocks.ResNeXt.__init__).parameters.items())[1:]:
        if name not in fields:
            if parameter.default is inspect.Parameter.empty:
                raise RuntimeError(f"ResNeXt needs {name!r}, which the spec does not have")
            continue
        value = getattr(spec, name)
        note = (CHOICE_NOTES[name].get(value) if name in CHOICE_NOTES else NOTES.get(name)) \
            or FIELDS[name].help  # a field or value with no note of its own: its help
        arguments.append(f"        {name}={_literal(value)},  # {note}")
    return "\n".join([
        "def build_model() -> ResNeXt:",
        f'    """{spec.name}, form ({spec.form}): the network this file was exported for."""',
        "    return ResNeXt(",
        *arguments,
        "    )",
    ])


def _load_function(spec: ResNeXtSpec) -> str:
    """load_weights(path): build_model() holding a state dict of this form's keys, read from
    .safetensors (needs the safetensors package, imported only here) or .pth/.pt
    (torch.load with weights_only=True: only tensors, never other pickled objects)."""
    return "\n".join([
        "def load_weights(path: str) -> ResNeXt:",
        f'    """build_model() holding the weights in `path`, in eval mode: a state dict of form '
        f'({spec.form})',
        "    keys (`python -m builder convert --form ...` writes one). A .safetensors file needs",
        "    the safetensors package; any other file is read by torch.load(weights_only=True),",
        '    which loads tensors and never runs other pickled objects."""',
        "    model = build_model()",
        '    if str(path).endswith(".safetensors"):',
        "        from safetensors.torch import load_file  # only here: the file needs only torch",
        "",
        "        state = load_file(str(path))",
        "    else:",
        '        state = torch.load(path, map_location="cpu", weights_only=True)',
        "    model.load_state_dict(state)",
        "    return model.eval()",
    ])


def _main_block(spec: ResNeXtSpec) -> str:
    size = spec.image_size
    return "\n".join([
        'if __name__ == "__main__":',
        "    torch.manual_seed(0)",
        "    model = build_model().eval()",
        f"    images = torch.randn(2, {spec.in_channels}, {size}, {size})  # a random batch of 2",
        "    with torch.no_grad():",
        "        logits = model(images)",
        "    params = sum(p.numel() for p in model.parameters())",
        f'    print(f"output shape: {{tuple(logits.shape)}}")  # (2, {spec.num_classes})',
        f'    print(f"parameters: {{params:,}}")  # {network_counts(spec).params:,}',
    ])


def export_source(spec: ResNeXtSpec) -> str:
    """One Python file that builds the spec's network with only torch: a docstring with the
    spec, parameters and multiply-adds; the definitions of builder/blocks.py the network
    needs, their code verbatim (ResNeXt's docstring says which block and form the file has);
    `build_model()`; `load_weights(path)`; and a `__main__` that runs a random batch.

    Its model has build_model(spec)'s state_dict keys and shapes and, with the same weights,
    gives bit-identical outputs (tests/test_export.py)."""
    spec = canonical_spec(spec)
    parts = [_docstring(spec) + "\n\n" + _imports()]
    named = _blocks_source()[1]
    for name in needed_definitions(spec.block, spec.form):
        if name == "BLOCK_CLASSES":
            parts.append(_block_table(spec.block, spec.form))
        elif name == blocks.ResNeXt.__name__:
            parts.append(_standalone_docstring(_segment(named[name]), named[name], spec.block,
                                               spec.form))
        else:
            parts.append(_segment(named[name]))
    parts += [_build_function(spec), _load_function(spec), _main_block(spec)]
    return "\n\n\n".join(parts) + "\n"


def export_json(spec: ResNeXtSpec) -> str:
    """The spec as JSON, loadable by `python -m builder ... --config FILE` and
    `ResNeXtSpec.from_json`."""
    return canonical_spec(spec).to_json() + "\n"


def _check_writable(path: Path) -> bool:
    """Open `path` for appending (which changes nothing in a file already there), so that a
    path that cannot be written fails now, not after seconds of tracing. Any failure is an
    OSError, a NUL character in the path included. Returns whether the file existed."""
    try:
        existed = path.exists()
        with open(path, "ab"):
            pass
    except ValueError as exc:  # "embedded null byte"
        raise OSError(errno.EINVAL, str(exc), str(path)) from None
    return existed


def export_onnx(spec: ResNeXtSpec, path, image_size: int | None = None, *,
                state_dict=None) -> Path:
    """The spec's model in eval mode as ONNX through `torch.onnx.export`: input `images`
    (N, in_channels, size, size) with a free batch size N, output `logits` (N, num_classes).
    The exporter's optimizer folds the BNs into the convolutions.

    Args:
        spec: the network.
        path: the .onnx file to write (one file; weights inside unless over 2 GB).
        image_size: height and width of the input. Default: spec.image_size.
        state_dict: weights to load, e.g. trained ones. Default: a fresh initialisation.

    Raises ResourceLimitError (a SpecError) when the model is over builder.guards' CPU limits
    at the example batch of 2 (checked before anything is built), ExportUnavailable where onnx
    or onnxscript is not installed, and OSError where `path` cannot be written (checked
    before the model is built and traced, which takes seconds). Returns the path."""
    spec = canonical_spec(spec)
    if image_size is not None:
        spec = spec.replace(image_size=image_size)  # validated like any spec value
    check_resources(spec, batch_size=2)  # the example batch below: refuse before building
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportUnavailable(
            f"ONNX export needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: pip install onnx onnxscript")
    path = Path(path)
    existed = _check_writable(path)
    writing = False
    try:
        model = build_model(spec)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        model.eval()
        size = spec.image_size
        images = torch.randn(2, spec.in_channels, size, size,  # batch 2: N stays free
                             generator=torch.Generator().manual_seed(0))
        writing = True
        torch.onnx.export(model, (images,), str(path), input_names=["images"],
                          output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},),
                          external_data=False, verbose=False)
    except BaseException:
        if writing or not existed:  # never leave half a file, nor the check's empty one
            path.unlink(missing_ok=True)
        raise
    return path
