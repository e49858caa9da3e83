"""Pinned configurations side by side: parameters, multiply-adds, the last measured time and the
paper's error where it reports one, and the paper's Table 2 sweep (C at matched complexity).

A pin is plain data, {"spec": {...}, "time": {...} or None}, so that the page can keep pins in
the browser's storage. Pins read back from there are untrusted: each spec is validated again by
ResNeXtSpec.from_dict and every number shown is recomputed from it, never read from the pin.
"""

from __future__ import annotations

import json

from . import paper
from .charts import COLORS, bars_svg
from .complexity import matched_width, network_counts
from .spec import ResNeXtSpec, SpecError

MAX_PINS = 24
MAX_PINS_JSON = 64 * 1024
MAX_PINS_LIST = 4 * MAX_PINS  # longer lists are refused before any entry is validated
SWEEP_CARDINALITIES = (1, 2, 4, 8, 32)  # paper Table 2
# the paper's Table 1 calls multiply-adds "FLOPs"
HEADERS = ["#", "network", "form", "params", "multiply-adds (the paper's FLOPs)", "last time",
           "paper error (its table)"]


def paper_error(spec: ResNeXtSpec) -> tuple[float, str] | None:
    """(error in %, what it measures) of the first row of the paper's Tables 3, 4, 7 that
    reports this network (builder.paper matches it by architecture), or None."""
    rows = paper.rows_for(spec)
    if not rows:
        return None
    row = rows[0]
    if row.dataset == paper.IMAGENET:
        return row.top1, "ImageNet top-1"
    return dict(row.errors)["test"], row.dataset


def pin(spec: ResNeXtSpec, time: dict | None = None) -> dict:
    """A pin: the spec and, optionally, its last measured time
    ({"median_ms", "batch_size", "device"})."""
    return {"spec": spec.to_dict(), "time": _clean_time(time)}


def _clean_time(time) -> dict | None:
    if not isinstance(time, dict):
        return None
    try:
        median = float(time["median_ms"])
        batch = int(time["batch_size"])
        device = str(time["device"])[:80]
    except (KeyError, TypeError, ValueError):
        return None
    if not (median > 0 and batch > 0):
        return None
    return {"median_ms": median, "batch_size": batch, "device": device}


def load_pins(text) -> list[dict]:
    """Pins from a list or its JSON text (the browser's storage or the API): invalid entries
    are dropped; the last MAX_PINS are kept. Checked before any entry is: SpecError("pins")
    for anything but None, a str or a list, for a list of more than MAX_PINS_LIST entries,
    and for JSON nested too deep for the parser."""
    if text is not None and not isinstance(text, (str, list)):
        raise SpecError("pins", type(text).__name__, "expected a list of pins or its JSON text")
    if isinstance(text, list):
        data = text
    elif not text or len(text) > MAX_PINS_JSON:
        return []
    else:
        try:
            data = json.loads(text)
        except ValueError:
            return []
        except RecursionError:
            raise SpecError("pins", f"JSON text of {len(text):,} characters",
                            "JSON nested less deeply (a pin is 3 levels deep)") from None
    if isinstance(data, list) and len(data) > MAX_PINS_LIST:
        raise SpecError("pins", f"a list of {len(data):,} entries",
                        f"at most {MAX_PINS_LIST} entries (the last {MAX_PINS} are kept)")
    pins = []
    for entry in data if isinstance(data, list) else []:
        try:
            spec = ResNeXtSpec.from_dict(entry["spec"])
        except (SpecError, KeyError, TypeError, RecursionError):
            continue
        pins.append(pin(spec, entry.get("time")))
    return pins[-MAX_PINS:]


def load_times(text) -> dict[str, dict]:
    """The last measured times the page keeps ({spec JSON: time}), from JSON text sent by the
    browser (untrusted): anything but an object of valid times, under the size cap, is
    dropped, entry by entry."""
    if not isinstance(text, str) or not text or len(text) > MAX_PINS_JSON:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    times = {}
    for key, value in data.items():
        clean = _clean_time(value)
        if isinstance(key, str) and len(key) <= 4096 and clean is not None:
            times[key] = clean
    return times


def add_pins(pins: list[dict], specs: list[ResNeXtSpec], times: dict | None = None) -> list[dict]:
    """Pins with `specs` appended; a spec already pinned moves to the end, with the newer
    time. `times` maps spec JSON (`to_json(indent=None)`) to a measured time."""
    times = times or {}
    keys = [s.to_json(indent=None) for s in specs]
    kept = [p for p in pins if ResNeXtSpec.from_dict(p["spec"]).to_json(indent=None) not in keys]
    old = {ResNeXtSpec.from_dict(p["spec"]).to_json(indent=None): p["time"] for p in pins}
    new = [pin(spec, times.get(key) or old.get(key)) for spec, key in zip(specs, keys,
                                                                          strict=True)]
    return (kept + new)[-MAX_PINS:]


def sweep(spec: ResNeXtSpec, cardinalities=SWEEP_CARDINALITIES) -> list[ResNeXtSpec]:
    """The paper's Table 2 on the spec's template: for each C, the width per group d that keeps
    the complexity of the C=1, d=64 block (ResNet-50: C=1 d=64, 2 x 40d, 4 x 24d, 8 x 14d,
    32 x 4d)."""
    reference = spec.replace(cardinality=1, width_per_group=64)
    specs = []
    for c in cardinalities:
        candidate = spec.replace(cardinality=c)
        specs.append(candidate.replace(width_per_group=matched_width(candidate, reference)))
    return specs


def _time_text(time: dict | None) -> str:
    if not time:
        return "–"
    return f"{time['median_ms']:,.1f} ms (batch {time['batch_size']}, {time['device']})"


def table(pins: list[dict]) -> dict:
    """The pins as {"headers", "data"}: numbers recomputed from each spec."""
    data = []
    for i, entry in enumerate(pins, 1):
        spec = ResNeXtSpec.from_dict(entry["spec"])
        total = network_counts(spec).total
        data.append([str(i), spec.name, spec.form, f"{total.params:,}",
                     f"{total.macs / 1e9:.2f} G", _time_text(entry["time"]),
                     paper.errors_text(spec)])
    return {"headers": list(HEADERS), "data": data}


def charts_svg(pins: list[dict]) -> str:
    """Bar charts of the pins: parameters, multiply-adds and (where measured) time."""
    if not pins:
        return ""
    labels, params, macs, times, specs = [], [], [], [], []
    for i, entry in enumerate(pins, 1):
        spec = ResNeXtSpec.from_dict(entry["spec"])
        total = network_counts(spec).total
        specs.append(spec)
        label = f"{i}. {spec.name} ({spec.form})"
        labels.append(label)
        params.append((label, total.params / 1e6, f"{total.params / 1e6:.2f} M"))
        macs.append((label, total.macs / 1e9, f"{total.macs / 1e9:.2f} G"))
        if entry["time"]:
            t = entry["time"]
            times.append((label, t["median_ms"], f"{t['median_ms']:,.1f} ms"))
    parts = [paper.sweep_chart(specs), bars_svg("parameters (millions)", params, COLORS[0]),
             bars_svg("multiply-adds (billions; the paper's FLOPs)", macs, COLORS[1])]
    if times:
        parts.append(bars_svg("last measured time per batch (ms)", times, COLORS[2]))
    return "".join(parts)
