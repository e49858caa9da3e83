"""The architecture from the weights alone: key names and shapes -> a ResNeXtSpec.

What the shapes tell (torchvision's layout, which timm's ResNet shares, and the paths of
forms (a) and (b)):
  stem: conv1.weight is [stem_width, in_channels, k, k]: k=7 the ImageNet stem, k=3 CIFAR's;
  depths: the `layerN.M.` keys; block type: whether a block has a third conv (conv3);
  form: `paths.i.` keys (C paths) holding the last conv (a) or not (b); none: (c);
  cardinality: the paths counted, or from the grouped 3x3 of form (c), [w, w/C, 3, 3];
  width_per_group: d = w / C in stage 1 (torchvision's width = int(planes * d / 64) * C);
  num_classes: fc.weight is [num_classes, features].
What they cannot tell: where a bottleneck strides (the 1x1 or the 3x3: same shapes), the image
size (weights do not depend on it), zero_init_residual (an initialisation, overwritten by
loading), and, for a basic block in form (c), C apart from d (one dense block, paper Fig. 4).
Those are assumed, and said so. The spec found is checked against the model it builds, on the
meta device (no memory), key for key and shape for shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from . import registry
from .guards import check as check_resources
from .network import build_model
from .share import preset_of
from .spec import PRESETS, ResNeXtSpec, SpecError
from .weights import WeightsError

_BLOCK_KEY = re.compile(r"layer(\d+)\.(\d+)\.(.*)")
_PATH_KEY = re.compile(r"paths\.(\d+)\.(.*)")
STEM_KERNELS = {7: "imagenet", 3: "cifar"}
DEFAULT = ResNeXtSpec()


@dataclass(frozen=True)
class Inferred:
    """What the weights say: the spec, the preset it equals (or None), the fields assumed
    (not told by the weights) and one sentence per assumption or finding."""

    spec: ResNeXtSpec
    preset: str | None
    assumed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.spec.to_dict(), "preset": self.preset, "assumed": list(self.assumed),
                "notes": list(self.notes)}


def _shapes(state: Mapping) -> dict[str, tuple[int, ...]]:
    out = {}
    for key, value in state.items():
        out[key] = tuple(value.shape) if isinstance(value, torch.Tensor) else tuple(value)
    return out


def _need(shapes, key: str, ndim: int, what: str) -> tuple[int, ...]:
    shape = shapes.get(key)
    if shape is None or len(shape) != ndim:
        found = "missing" if shape is None else f"of shape {list(shape)}"
        raise WeightsError("weights", f"{key} is {found}; expected the {what} "
                           f"({ndim} dimensions), as in torchvision's ResNet layout")
    return shape


def _depths(shapes) -> tuple[int, ...]:
    blocks: dict[int, set[int]] = {}
    for key in shapes:
        found = _BLOCK_KEY.fullmatch(key)
        if found:
            blocks.setdefault(int(found.group(1)), set()).add(int(found.group(2)))
    if not blocks:
        raise WeightsError("weights", "no layerN.M. keys: not a ResNet/ResNeXt state dict")
    stages = sorted(blocks)
    if stages != list(range(1, len(stages) + 1)):
        raise WeightsError("weights", f"stages {stages}: expected layer1, layer2, ... in order")
    for n in stages:
        if sorted(blocks[n]) != list(range(len(blocks[n]))):
            raise WeightsError("weights", f"layer{n} has blocks {sorted(blocks[n])}: expected "
                               "0, 1, 2, ... in order")
    return tuple(len(blocks[n]) for n in stages)


def _block_keys(shapes, stage: int) -> dict[str, tuple[int, ...]]:
    prefix = f"layer{stage}.0."
    return {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}


def _block_form(keys: Mapping[str, tuple]) -> tuple[str, str, int]:
    """(block type, form, paths counted or 0) of one block's keys, from the registry."""
    paths = {int(m.group(1)) for m in map(_PATH_KEY.fullmatch, keys) if m}
    names = {k.split(".", 1)[0] for k in keys}
    path_names = {m.group(2).split(".", 1)[0] for m in map(_PATH_KEY.fullmatch, keys) if m}
    present = names | path_names
    # the block type with the most convs whose every layer is present
    kinds = sorted((b for b in registry.BLOCK_TYPES.values()
                    if {*b.split_layers, b.last_conv} <= present), key=lambda b: -b.convs)
    if not kinds:
        raise WeightsError("weights", "layer1.0 has neither a bottleneck's nor a basic "
                           "block's layers (conv1, conv2, conv3)")
    kind = kinds[0]
    merge = "dense" if not paths else ("sum" if kind.last_conv in path_names else "concat")
    form = next((f.key for f in registry.FORMS.values() if f.merge == merge), None)
    if form is None:
        raise WeightsError("weights", f"no registered form merges by {merge!r}")
    return kind.key, form, len(paths)


def _cardinality_and_d(shapes, block: str, form: str, paths: int) -> tuple[int, int, list]:
    kind = registry.BLOCK_TYPES[block]
    convs = [layer for layer in kind.split_layers if layer.startswith("conv")]
    if paths:
        d = _need(shapes, f"layer1.0.paths.0.{convs[0]}.weight", 4, "first conv of a path")[0]
        return paths, d, []
    width = _need(shapes, f"layer1.0.{convs[0]}.weight", 4, "first conv of a block")[0]
    if len(convs) > 1:  # the grouped 3x3: [w, w/C, 3, 3]
        per_group = _need(shapes, f"layer1.0.{convs[1]}.weight", 4, "grouped 3x3")[1]
        if per_group < 1 or width % per_group:
            raise WeightsError("weights", f"layer1.0.{convs[1]}.weight takes {per_group} "
                               f"channels per group of {width}: not a grouped conv")
        c = width // per_group
        return c, width // c, []
    note = (f"cardinality: 1 assumed, width_per_group {width}: a basic block in form (c) is "
            f"one dense block, so C paths of d give the same weights as C=1, d=C*d "
            "(paper Fig. 4)")
    return 1, width, [("cardinality", note)]


def infer_spec(state: Mapping, source="weights") -> Inferred:
    """The spec a state dict (or a mapping of key -> shape) was made by. Raises WeightsError
    (naming `source`, e.g. the file) and the key that is missing or does not fit."""
    try:
        return _infer(_shapes(state))
    except WeightsError as exc:
        raise WeightsError(source, exc.problem) from None


def _infer(shapes: dict[str, tuple[int, ...]]) -> Inferred:
    stem_w = _need(shapes, "conv1.weight", 4, "stem convolution")
    fc_w = _need(shapes, "fc.weight", 2, "classifier (fc)")
    stem = STEM_KERNELS.get(stem_w[-1])
    if stem is None:
        raise WeightsError("weights", f"conv1.weight has a {stem_w[-1]}x{stem_w[-1]} kernel; "
                           "expected 7x7 (ImageNet stem) or 3x3 (CIFAR stem)")
    depths = _depths(shapes)
    block, form, paths = _block_form(_block_keys(shapes, 1))
    cardinality, d, assumed = _cardinality_and_d(shapes, block, form, paths)
    image_size = PRESETS["resnext29_8x64d"].image_size if stem == "cifar" else DEFAULT.image_size
    assumed += [
        ("stride_on", "stride_on: '3x3' assumed (torchvision, timm, the paper): the stride's "
                      "position leaves every shape unchanged"),
        ("image_size", f"image_size: {image_size} assumed: the weights do not depend on it"),
        ("zero_init_residual", "zero_init_residual: false assumed: an initialisation, which "
                               "loaded weights replace")]
    try:
        spec = ResNeXtSpec(cardinality=cardinality, width_per_group=d, depths=depths,
                           form=form, block=block, stem=stem, stride_on="3x3",
                           num_classes=fc_w[0], in_channels=stem_w[1], image_size=image_size,
                           stem_width=stem_w[0])
    except SpecError as exc:
        raise WeightsError("weights", f"the shapes give an invalid spec: {exc}") from None
    problem = fit_problem(spec, shapes)
    if problem:
        raise WeightsError("weights", f"they look like {spec.name}, form ({form}), but "
                           f"{problem}")
    preset = preset_of(spec.replace(form=DEFAULT.form))
    notes = [f"{spec.name}, form ({form}): {len(shapes)} tensors"
             + (f"; the preset {preset}" + (f" in form ({form})" if form != DEFAULT.form
                                              else "") if preset else "; no preset")]
    return Inferred(spec, preset, [name for name, _ in assumed],
                    notes + [note for _, note in assumed])


def expected_shapes(spec: ResNeXtSpec) -> dict[str, tuple[int, ...]]:
    """Key -> shape of build_model(spec)'s state dict, built on the meta device (guarded)."""
    check_resources(spec)
    return {k: tuple(v.shape) for k, v in build_model(spec, device="meta").state_dict().items()}


def _listed(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def fit_problem(spec: ResNeXtSpec, state: Mapping) -> str | None:
    """None where the state dict's keys and shapes are exactly build_model(spec)'s; else one
    clause: the missing and unexpected keys (first few, with counts), the first wrong shape."""
    return _misfit(expected_shapes(spec), state)


def _misfit(wanted: dict[str, tuple[int, ...]], state: Mapping) -> str | None:
    shapes = _shapes(state)
    missing = [k for k in wanted if k not in shapes]
    unexpected = [k for k in shapes if k not in wanted]
    wrong = next((k for k in wanted if k in shapes and shapes[k] != wanted[k]), None)
    parts = []
    if missing:
        parts.append(f"{len(missing)} keys are missing ({_listed(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} are unexpected ({_listed(unexpected)})")
    if wrong:
        parts.append(f"the first wrong shape is {wrong}: {list(shapes[wrong])} in the file, "
                     f"{list(wanted[wrong])} in the model")
    return "; ".join(parts) if parts else None


def load_into(spec: ResNeXtSpec, state: Mapping[str, torch.Tensor],
              source="weights") -> torch.nn.Module:
    """build_model(spec) holding `state`, in eval mode. The tensors are taken as they are
    (their dtype kept; no initialisation is run). A state that does not fit is a WeightsError
    in one sentence: what is missing, unexpected and the first wrong shape."""
    check_resources(spec)  # refuses a spec too big to build
    model = build_model(spec, device="meta")  # built once: its shapes, then its tensors
    problem = _misfit({k: tuple(v.shape) for k, v in model.state_dict().items()}, state)
    if problem:
        raise WeightsError(source, f"they do not fit {spec.name}, form ({spec.form}): "
                           f"{problem}")
    model.load_state_dict(dict(state), strict=True, assign=True)
    return model.eval()
