"""Where the time goes, by kind of layer: a profile's rows summed by what they are (the 1x1
convolutions, the 3x3s, BN, ...), each form beside the others, against each kind's share of
the multiply-adds. The same 3x3 work is one grouped conv in form (c) and C small dense convs
per block in forms (a) and (b): one kind, its calls counted, so the forms line up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

OWN_OPS = "blocks' own ops (shortcut add, sum, concat)"
FRAMEWORK = "framework outside modules"
_NAMES = {"BatchNorm2d": "BN", "ReLU": "ReLU", "MaxPool2d": "pooling",
          "AdaptiveAvgPool2d": "pooling", "Linear": "classifier (Linear)", "ops": OWN_OPS}


@dataclass(frozen=True)
class KindShare:
    """One kind of layer in one form, per iteration."""

    kind: str
    self_ms: float
    percent: float  # of the form's profiled step
    calls: int
    macs: int
    macs_percent: float  # of the form's multiply-adds

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def kind_of(row) -> str:
    """A layer row's kind: "conv 3x3" whatever its groups, "BN", ..."""
    if row.kind == "Conv2d":
        return f"conv {row.kernel_size}"
    if row.kind == "ops" and row.name.startswith("("):  # training's backward, the network's
        return row.name.strip("()")
    return _NAMES.get(row.kind, row.kind)


def by_kind(form_profile) -> list[KindShare]:
    """The form's rows summed by kind, largest time first, then the framework's share."""
    sums: dict[str, list] = {}
    for row in form_profile.layers:
        entry = sums.setdefault(kind_of(row), [0.0, 0, 0])
        entry[0] += row.self_ms
        entry[1] += row.calls
        entry[2] += row.macs
    total, macs = form_profile.total_ms, form_profile.macs

    def share(kind, ms, calls, work):
        return KindShare(kind, ms, 100 * ms / total if total else 0.0, calls, work,
                         100 * work / macs if macs else 0.0)

    shares = sorted((share(k, *v) for k, v in sums.items()), key=lambda s: -s.self_ms)
    if form_profile.layers:
        shares.append(share(FRAMEWORK, form_profile.other_ms, 0, 0))
    return shares


def table(result) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) for every profiled form: a kind per row, its share of the
    multiply-adds, then per form "ms (% of the step), calls"; kinds in the main form's
    order of time."""
    shares = {form: {s.kind: s for s in by_kind(p)} for form, p in result.forms.items()}
    order = list(shares[result.form])
    for form_shares in shares.values():
        order += [k for k in form_shares if k not in order]
    headers = ["kind", "% of multiply-adds"] + [f"form ({f})" for f in shares]
    rows = []
    for kind in order:
        work = next((s[kind].macs_percent for s in shares.values() if kind in s), 0.0)
        cells = [kind, f"{work:.1f}" if kind != FRAMEWORK else ""]
        for form_shares in shares.values():
            s = form_shares.get(kind)
            cells.append("" if s is None else f"{s.self_ms:.3g} ms ({s.percent:.0f}%)"
                         + (f", {s.calls} call{'s' if s.calls > 1 else ''}" if s.calls else ""))
        rows.append(cells)
    return headers, rows
