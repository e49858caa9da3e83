"""The one description of a network: a frozen, validated ResNeXtSpec, the presets, JSON in/out.

Everything else in `builder` is a pure function of a spec: spec -> model, spec -> graph,
spec -> source, spec -> complexity. Names follow the paper (Xie et al., CVPR 2017):
cardinality C, width per group d, stage depths, block form (a), (b) or (c).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .registry import BLOCK_TYPES, FORMS

BLOCKS = BLOCK_TYPES  # block type -> BlockType (builder.registry); iterating gives the keys
STEMS = ("imagenet", "cifar")
STRIDE_ON = ("3x3", "1x1")
MAX_STAGES = 8
DEPTH_RANGE = (1, 128)  # blocks in one stage
MAX_JSON_BYTES = 64 * 1024


class SpecError(ValueError):
    """An invalid spec value. The message names the field, the value and what is allowed."""

    def __init__(self, field_name: str, value, allowed: str):
        self.field = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field_name}: {_show(value)} is not allowed; {allowed}")


def _show(value) -> str:
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nesting ~1000 deep; an int of over 4300 digits
        text = f"<{type(value).__name__} too big to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _check_int(name: str, value, lo: int, hi: int, label: str | None = None) -> None:
    label = label or name
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(label, value, f"expected a whole number from {lo} to {hi}")
    if not lo <= value <= hi:
        raise SpecError(label, value, f"expected a whole number from {lo} to {hi}")


def _check_choice(name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise SpecError(name, value, f"expected one of {allowed}")


@dataclass(frozen=True)
class FieldInfo:
    """What one spec field is, for everything that shows or parses it (builder.cli's options,
    builder.share's link keys, builder.export's literals, the page's controls)."""

    name: str  # the spec's field name
    kind: str  # "int", "depths" (a tuple of ints), "choice" or "bool"
    default: object
    key: str  # its key in a share link (?C=32&d=4)
    label: str  # the control's label
    help: str  # one short line
    lo: int | None = None  # "int" and "depths" (each entry): the allowed range
    hi: int | None = None
    choice_labels: Callable[[], list[tuple[str, str]]] | None = None  # (value, label)
    flag: str | None = None  # a short CLI flag besides --name-with-dashes
    control: str = ""  # the page control's element id
    advanced: bool = False  # shown under "More" on the page

    @property
    def values(self) -> tuple[str, ...]:
        """The allowed values of a "choice" field, now (forms are registered at run time)."""
        return tuple(value for value, _ in self.choices)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return self.choice_labels() if self.choice_labels else []

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def allowed(self) -> str:
        """What is allowed, in words."""
        if self.kind == "choice":
            return "expected one of " + ", ".join(repr(v) for v in self.values)
        if self.kind == "bool":
            return "expected true or false"
        if self.kind == "depths":
            return (f"expected 1 to {MAX_STAGES} whole numbers from {self.lo} to {self.hi}, "
                    "separated by commas")
        return f"expected a whole number from {self.lo} to {self.hi}"


def _field(default, key: str, label: str, help: str, bounds: tuple[int, int] | None = None, *,
           choices=None, flag: str | None = None, control: str = "", advanced: bool = False):
    meta = {"key": key, "label": label, "help": help, "bounds": bounds, "choices": choices,
            "flag": flag, "control": control, "advanced": advanced}
    return field(default=default, metadata=meta)  # a tuple default is fine: immutable



@dataclass(frozen=True)
class ResNeXtSpec:
    """A ResNeXt (or ResNet, at C=1) network, in plain values.

    Args:
        cardinality: C, the number of parallel paths in each block (groups of the 3x3).
        width_per_group: d, the bottleneck width of one path in the first stage; it doubles
            with each later stage, as the block output does (torchvision's `width_per_group`).
        depths: blocks per stage; one entry per stage, any number of stages.
        form: "a" (C paths summed), "b" (early concatenation) or "c" (grouped conv).
        block: "bottleneck" (1x1, 3x3, 1x1; output 4x the stage's planes) or "basic"
            (3x3, 3x3; ResNet-18/34).
        stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool) or "cifar" (3x3/1 conv, no pool).
        stride_on: where a bottleneck block downsamples: "3x3" (paper, torchvision,
            "ResNet v1.5") or "1x1" (original ResNet v1).
        num_classes: outputs of the classifier.
        in_channels: channels of the input image.
        image_size: input height and width, for shapes and multiply-adds.
        stem_width: output channels of the stem convolution (torchvision: 64).
        zero_init_residual: start the last BN of every block at zero, so each block begins
            as the identity (torchvision's `zero_init_residual`, Goyal et al. 2017).
    """

    # Each field's metadata (see `_field`) is all the CLI, the share link, the exported file
    # and the page know of it: its link key, label, help and allowed values.
    cardinality: int = _field(32, "C", "Cardinality C", "paths per block", (1, 4096),
                              flag="-C")  # C: paths per block; 1 gives a plain ResNet
    width_per_group: int = _field(4, "d", "Width per group d", "path width, stage 1",
                                  (1, 4096), flag="-d", control="width")  # "32x4d": d=4
    depths: tuple[int, ...] = _field((3, 4, 6, 3), "depths", "Blocks per stage",
                                     "one number per stage, e.g. 3, 4, 6, 3",
                                     DEPTH_RANGE)  # ResNeXt-50
    form: str = _field("c", "form", "Block form", "a, b or c: same function, different speed",
                       choices=lambda: [(k, f"({k}) {f.description}") for k, f in FORMS.items()])
    block: str = _field("bottleneck", "block", "Block type", "bottleneck or basic",
                        choices=lambda: [(k, t.label) for k, t in BLOCK_TYPES.items()])
    stem: str = _field("imagenet", "stem", "Stem", "imagenet: 7x7/2 + max-pool; cifar: 3x3/1",
                       choices=lambda: [("imagenet", "ImageNet: 7×7/2 conv + max-pool"),
                                        ("cifar", "CIFAR: 3×3/1 conv, no pool")])
    stride_on: str = _field("3x3", "stride", "Stride of a downsampling bottleneck",
                            "which bottleneck conv carries the stride 2",
                            choices=lambda: [("3x3", "on the 3×3 (paper, v1.5)"),
                                             ("1x1", "on the first 1×1 (ResNet v1)")])
    num_classes: int = _field(1000, "classes", "Classes", "classifier outputs", (1, 100_000))
    in_channels: int = _field(3, "in", "Input channels", "channels of the input image",
                              (1, 64), advanced=True)  # RGB
    image_size: int = _field(224, "size", "Image size", "input height and width",
                             (8, 2048))  # spatial sizes and multiply-adds, not the model
    stem_width: int = _field(64, "stem_width", "Stem width", "channels after the stem",
                             (1, 1024), advanced=True)
    zero_init_residual: bool = _field(False, "zero_init",
                                      "Zero-init the last BN of each block",
                                      "start each block's last BN at zero (block = identity)",
                                      advanced=True, control="zero-init")

    def __post_init__(self):
        depths = self.depths
        if isinstance(depths, list):
            depths = tuple(depths)
            object.__setattr__(self, "depths", depths)
        if not isinstance(depths, tuple):
            raise SpecError("depths", depths, "expected a list of whole numbers, one per stage")
        if not 1 <= len(depths) <= MAX_STAGES:
            raise SpecError("depths", depths, f"expected 1 to {MAX_STAGES} stages")
        for info in spec_fields():
            value = getattr(self, info.name)
            if info.kind == "depths":
                for i, depth in enumerate(value):
                    _check_int("depths", depth, info.lo, info.hi, label=f"depths[{i}]")
            elif info.kind == "int":
                _check_int(info.name, value, info.lo, info.hi)
            elif info.kind == "choice":
                _check_choice(info.name, value, info.values)
            elif not isinstance(value, bool):
                raise SpecError(info.name, value, "expected true or false")
        if self.block == "basic" and self.stride_on != "3x3":
            raise SpecError("stride_on", self.stride_on,
                            "a basic block has no 1x1 conv: its stride is on the first 3x3 ('3x3')")

    # -- derived numbers -------------------------------------------------------------------
    @property
    def expansion(self) -> int:
        """Block output = expansion x planes (4 for the bottleneck, 1 for the basic block)."""
        return BLOCK_TYPES[self.block].expansion

    def planes(self, stage: int) -> int:
        """torchvision's `planes` of a stage: 64, 128, 256, 512, ..."""
        return 64 * 2**stage

    def width(self, stage: int) -> int:
        """Bottleneck width C*d of a stage, by torchvision's rule."""
        return int(self.planes(stage) * self.width_per_group / 64) * self.cardinality

    def path_width(self, stage: int) -> int:
        """Width of one path in a stage (d scaled by the stage): width // C."""
        return self.width(stage) // self.cardinality

    def out_channels(self, stage: int) -> int:
        return self.planes(stage) * self.expansion

    @property
    def name(self) -> str:
        """A short name in the paper's style: 'ResNeXt-50 (32x4d)', 'ResNet-18'."""
        layers = BLOCK_TYPES[self.block].convs * sum(self.depths) + 2
        if self.cardinality == 1:
            return f"ResNet-{layers}" + ("" if self.width_per_group == 64 else
                                         f" (width {self.width_per_group})")
        return f"ResNeXt-{layers} ({self.cardinality}x{self.width_per_group}d)"

    def replace(self, **changes) -> ResNeXtSpec:
        return dataclasses.replace(self, **changes)

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        data["depths"] = list(self.depths)
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data) -> ResNeXtSpec:
        """Build a spec from plain data (parsed JSON). Keys left out take the defaults, or
        those of `preset` when that key names one. Types are checked, never coerced."""
        if not isinstance(data, dict):
            raise SpecError("config", data, "expected a JSON object of spec fields")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = [k for k in data if k not in known and k != "preset"]
        if unknown:
            raise SpecError("config", unknown[0],
                            f"unknown key; allowed keys are preset, {', '.join(sorted(known))}")
        base = cls()
        if "preset" in data:
            preset = data["preset"]
            _check_choice("preset", preset, tuple(PRESETS))
            base = PRESETS[preset]
        values = {k: v for k, v in data.items() if k != "preset"}
        for key, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise SpecError(key, value, "expected a finite value")
        if "depths" in values:
            depths = values["depths"]
            if not isinstance(depths, list):
                raise SpecError("depths", depths, "expected a list of whole numbers, one per stage")
            values["depths"] = tuple(depths)
        return base.replace(**values)

    @classmethod
    def from_json(cls, text) -> ResNeXtSpec:
        """Parse a JSON config. Never evaluates anything: json.loads, then type checks."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise SpecError("config", "<bytes>", "expected UTF-8 JSON text") from None
        if not isinstance(text, str):
            raise SpecError("config", type(text).__name__, "expected JSON text")
        if len(text) > MAX_JSON_BYTES:
            raise SpecError("config", f"<{len(text)} characters>",
                            f"expected at most {MAX_JSON_BYTES} characters of JSON")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except SpecError:
            raise
        except RecursionError:
            raise SpecError("config", "<deeply nested JSON>",
                            "expected a flat JSON object") from None
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise SpecError("config", _short(text), f"expected valid JSON ({exc})") from None
        return cls.from_dict(data)


def spec_fields() -> tuple[FieldInfo, ...]:
    """Every spec field with its metadata, in the spec's order."""
    return _FIELDS


def _info(f: dataclasses.Field) -> FieldInfo:
    m = f.metadata
    kind = ("depths" if f.name == "depths" else "bool" if isinstance(f.default, bool)
            else "choice" if m["choices"] else "int")
    lo, hi = m["bounds"] or (None, None)
    control = m["control"] or f.name.replace("_", "-")
    return FieldInfo(f.name, kind, f.default, m["key"], m["label"], m["help"], lo, hi,
                     m["choices"], m["flag"], control, m["advanced"])


_FIELDS = tuple(_info(f) for f in dataclasses.fields(ResNeXtSpec))
FIELDS = {info.name: info for info in _FIELDS}
# ranges by name, for code that only needs the numbers; "depth" is one stage's, "stages" the
# number of stages
LIMITS = {info.name: (info.lo, info.hi) for info in _FIELDS if info.kind == "int"}
LIMITS.update(depth=DEPTH_RANGE, stages=(1, MAX_STAGES))


def _reject_constant(name: str):
    raise SpecError("config", name, "expected a finite number (NaN and Infinity are not JSON)")


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 40 else text[:37] + "..."


def _preset(cardinality, width_per_group, depths, block="bottleneck", **rest) -> ResNeXtSpec:
    return ResNeXtSpec(cardinality=cardinality, width_per_group=width_per_group,
                       depths=depths, block=block, **rest)


# The presets: torchvision's definitions (exact parameter counts in tests/test_spec.py) and the
# paper's CIFAR ResNeXt-29 (three stages of three blocks, 3x3 stem, no max-pool, 10 classes).
PRESETS: dict[str, ResNeXtSpec] = {
    "resnet18": _preset(1, 64, (2, 2, 2, 2), block="basic"),
    "resnet34": _preset(1, 64, (3, 4, 6, 3), block="basic"),
    "resnet50": _preset(1, 64, (3, 4, 6, 3)),
    "resnet101": _preset(1, 64, (3, 4, 23, 3)),
    "resnet152": _preset(1, 64, (3, 8, 36, 3)),
    "wide_resnet50_2": _preset(1, 128, (3, 4, 6, 3)),
    "resnext50_32x4d": _preset(32, 4, (3, 4, 6, 3)),
    "resnext101_32x4d": _preset(32, 4, (3, 4, 23, 3)),
    "resnext101_32x8d": _preset(32, 8, (3, 4, 23, 3)),
    "resnext101_64x4d": _preset(64, 4, (3, 4, 23, 3)),
    "resnext29_8x64d": _preset(8, 64, (3, 3, 3), stem="cifar", num_classes=10, image_size=32),
    "resnext29_16x64d": _preset(16, 64, (3, 3, 3), stem="cifar", num_classes=10, image_size=32),
}


def get_preset(name: str) -> ResNeXtSpec:
    _check_choice("preset", name, tuple(PRESETS))
    return PRESETS[name]
