"""The one description of a network: a frozen, validated ResNeXtSpec, the presets, JSON in/out.

Everything else in `builder` is a pure function of a spec: spec -> model, spec -> graph,
spec -> source, spec -> complexity. Names follow the paper (Xie et al., CVPR 2017):
cardinality C, width per group d, stage depths, block form (a), (b) or (c).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

FORMS = {
    "a": "aggregated paths: C paths of 1x1, 3x3, 1x1, outputs summed",
    "b": "early concatenation: C paths of 1x1, 3x3, concatenated, then one 1x1",
    "c": "grouped convolution: 1x1, 3x3 with groups=C, 1x1 (the fast form)",
}
BLOCKS = ("bottleneck", "basic")
STEMS = ("imagenet", "cifar")
STRIDE_ON = ("3x3", "1x1")

# Allowed ranges: generous enough for every sensible design, small enough that a typo
# (depths=3000) is caught here rather than by the allocator.
LIMITS = {
    "cardinality": (1, 4096),
    "width_per_group": (1, 4096),
    "depth": (1, 128),
    "stages": (1, 8),
    "num_classes": (1, 100_000),
    "in_channels": (1, 64),
    "image_size": (8, 2048),
    "stem_width": (1, 1024),
}
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

    cardinality: int = 32  # C: paths per block; 1 gives a plain ResNet
    width_per_group: int = 4  # d: width of one path in stage 1 ("32x4d" is C=32, d=4)
    depths: tuple[int, ...] = (3, 4, 6, 3)  # blocks per stage: ResNeXt-50
    form: str = "c"  # "a", "b", "c": same function, different speed
    block: str = "bottleneck"  # "bottleneck" (depth 3) or "basic" (depth 2)
    stem: str = "imagenet"  # "imagenet": 7x7/2 + max-pool; "cifar": 3x3/1, no pool
    stride_on: str = "3x3"  # which bottleneck conv carries the stride 2
    num_classes: int = 1000  # classifier outputs
    in_channels: int = 3  # RGB
    image_size: int = 224  # used for spatial sizes and multiply-adds, not by the model
    stem_width: int = 64  # channels after the stem
    zero_init_residual: bool = False  # last BN of each block starts at 0 (block = identity)

    def __post_init__(self):
        depths = self.depths
        if isinstance(depths, list):
            depths = tuple(depths)
            object.__setattr__(self, "depths", depths)
        if not isinstance(depths, tuple):
            raise SpecError("depths", depths, "expected a list of whole numbers, one per stage")
        lo, hi = LIMITS["stages"]
        if not lo <= len(depths) <= hi:
            raise SpecError("depths", depths, f"expected {lo} to {hi} stages")
        for i, depth in enumerate(depths):
            _check_int("depths", depth, *LIMITS["depth"], label=f"depths[{i}]")
        for name in ("cardinality", "width_per_group", "num_classes", "in_channels",
                     "image_size", "stem_width"):
            _check_int(name, getattr(self, name), *LIMITS[name])
        _check_choice("form", self.form, tuple(FORMS))
        _check_choice("block", self.block, BLOCKS)
        _check_choice("stem", self.stem, STEMS)
        _check_choice("stride_on", self.stride_on, STRIDE_ON)
        if not isinstance(self.zero_init_residual, bool):
            raise SpecError("zero_init_residual", self.zero_init_residual, "expected true or false")
        if self.block == "basic" and self.stride_on != "3x3":
            raise SpecError("stride_on", self.stride_on,
                            "a basic block has no 1x1 conv: its stride is on the first 3x3 ('3x3')")

    # -- derived numbers -------------------------------------------------------------------
    @property
    def expansion(self) -> int:
        """Block output = expansion x planes (4 for the bottleneck, 1 for the basic block)."""
        return 4 if self.block == "bottleneck" else 1

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
        per_block = 3 if self.block == "bottleneck" else 2
        layers = per_block * sum(self.depths) + 2
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
