"""A spec in a link: URL query string <-> ResNeXtSpec, for sharing a configuration.

    >>> from builder import PRESETS
    >>> to_query(PRESETS["resnext50_32x4d"].replace(cardinality=64), preset="resnext50_32x4d")
    'preset=resnext50_32x4d&C=64'
    >>> from_query("preset=resnext50_32x4d&C=64&form=a").spec.name
    'ResNeXt-50 (64x4d)'

A link names a preset (the base) and only the fields that differ from it, with short keys
(`C`, `d`, as in "32x4d"). Parsing is strict about the keys it knows (every value is checked
by ResNeXtSpec, the messages name the field) and ignores keys it does not, such as Gradio's
own `__theme`, so that a link survives being passed around. Nothing is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from .spec import FIELDS, PRESETS, ResNeXtSpec, SpecError, spec_fields

# query key -> spec field, from each field's metadata; the order is the spec's
KEYS = {info.key: info.name for info in spec_fields()}
FIELD_KEYS = {field: key for key, field in KEYS.items()}
VIEW_KEYS = ("stage", "baseline")  # what the page shows, not what the network is
AUTO_BASELINE = "auto"  # the spec's C = 1 counterpart (builder.views.template_baseline)
MAX_QUERY_CHARS = 2000
_INT = re.compile(r"[0-9]{1,9}")
_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class SharedView:
    """What a link restores: the spec, the preset it was derived from (or None), the
    0-based stage shown in the block view and the preset compared against (None: the page's
    default baseline)."""

    spec: ResNeXtSpec
    preset: str | None = None
    stage: int = 0
    baseline: str | None = None


def preset_of(spec: ResNeXtSpec) -> str | None:
    """The name of the preset equal to `spec`, if any."""
    return next((name for name, preset in PRESETS.items() if preset == spec), None)


def _encode(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def to_query(spec: ResNeXtSpec, preset: str | None = None, stage: int = 0,
             baseline: str | None = None) -> str:
    """The query string (without "?") that restores `spec`: the preset, then the fields that
    differ from it. Without `preset`, the preset equal to the spec, or else none (the fields
    that differ from ResNeXtSpec's defaults). A nonzero `stage` is added for the block view,
    and a `baseline` (a preset's name) where the page compares against another than its
    default."""
    if preset is None:
        preset = preset_of(spec)
    if preset is not None and preset not in PRESETS:
        raise SpecError("preset", preset, f"expected one of {', '.join(PRESETS)}")
    base = PRESETS[preset] if preset else ResNeXtSpec()
    pairs = [("preset", preset)] if preset else []
    for key, field in KEYS.items():
        value = getattr(spec, field)
        if value != getattr(base, field):
            pairs.append((key, _encode(value)))
    if stage:
        pairs.append(("stage", str(stage)))
    if baseline is not None and baseline != AUTO_BASELINE:  # auto, the default, goes unsaid
        if baseline not in PRESETS:
            raise SpecError("baseline", baseline, f"expected {AUTO_BASELINE} or one of "
                            f"{', '.join(PRESETS)}")
        pairs.append(("baseline", baseline))
    return urlencode(pairs, safe=",")


def _parse_value(key: str, field: str, text: str):
    kind = FIELDS[field].kind
    text = text.strip()
    if kind == "depths":
        parts = [p.strip() for p in text.split(",")]
        if not parts or not all(_INT.fullmatch(p) for p in parts):
            raise SpecError("depths", text, f"expected whole numbers separated by commas, "
                            f"e.g. 3,4,6,3 (link key {key})")
        return [int(p) for p in parts]
    if kind == "int":
        if not _INT.fullmatch(text):
            raise SpecError(field, text, f"expected a whole number (link key {key})")
        return int(text)
    if kind == "bool":
        if text.lower() not in _BOOLS:
            raise SpecError(field, text, f"expected 1 or 0 (link key {key})")
        return _BOOLS[text.lower()]
    return text


def from_query(query: str | Mapping[str, str]) -> SharedView:
    """Parse a query string (with or without "?") or a mapping of its parameters.

    Raises SpecError naming the field when a known key has a bad value, or the preset is
    unknown. Unknown keys are ignored. An empty query gives the default spec."""
    if isinstance(query, str):
        if len(query) > MAX_QUERY_CHARS:
            raise SpecError("link", f"<{len(query)} characters>",
                            f"expected at most {MAX_QUERY_CHARS} characters")
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    else:
        pairs = list(query.items())
    data: dict = {}
    stage, baseline = 0, None
    for key, text in pairs:
        if key not in KEYS and key not in ("preset", *VIEW_KEYS):
            continue  # not ours (Gradio's `__theme`, a tracker's tag): ignored, whatever it holds
        if not isinstance(text, str) or len(text) > 200:
            raise SpecError(KEYS.get(key, key), _short(text), "expected a short text value")
        if key == "preset":
            data["preset"] = text.strip()
        elif key in KEYS:
            data[KEYS[key]] = _parse_value(key, KEYS[key], text)
        elif key == "stage":
            if not _INT.fullmatch(text.strip()):
                raise SpecError("stage", text, "expected a whole number (link key stage)")
            stage = int(text)
        elif key == "baseline":
            baseline = text.strip()
            if baseline != AUTO_BASELINE and baseline not in PRESETS:
                raise SpecError("baseline", baseline, f"expected {AUTO_BASELINE} or one of "
                                f"{', '.join(PRESETS)} (link key baseline)")
    spec = ResNeXtSpec.from_dict(data)
    if stage >= len(spec.depths):
        raise SpecError("stage", stage, f"expected a whole number from 0 to "
                        f"{len(spec.depths) - 1} (the spec has {len(spec.depths)} stages)")
    return SharedView(spec, data.get("preset"), stage, baseline)


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
