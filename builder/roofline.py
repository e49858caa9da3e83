"""The roofline of a profile: this device's measured compute peak and memory bandwidth, each
layer a point (arithmetic intensity, achieved TFLOP/s), every profiled form in one chart.
matplotlib with the Agg backend (no display); log axes, as a roofline needs."""

from __future__ import annotations

MARKERS = {"a": "o", "b": "s", "c": "^"}
# the layers whose multiply-adds are their work; builder.complexity counts a BN at 2 per
# channel per image, which would put BN, as ReLU and pooling, at no meaningful intensity
PLOTTED = ("Conv2d", "Linear")


def points(result) -> dict[str, list[tuple[str, float, float]]]:
    """form -> [(layer name, FLOP/byte, TFLOP/s)] for the convolutions and the classifier."""
    return {form: [(r.name, r.intensity, r.tflops) for r in p.layers
                   if r.kind in PLOTTED and r.intensity is not None and r.tflops is not None]
            for form, p in result.forms.items()}


def above_roof(result) -> list[tuple[str, str]]:
    """(form, layer) of the points above the roof at their intensity."""
    return [(form, name) for form, pts in points(result).items() for name, x, y in pts
            if y > min(result.peak_tflops, x * result.bandwidth_gbs / 1e3)]


def caption(result) -> str:
    """What the chart shows, and why a point can sit above the roof."""
    text = ("Points: the convolutions and the classifier, whose multiply-adds are their work. "
            "BN, ReLU and pooling are in the layer table: they move memory and do almost no "
            "arithmetic.")
    above = above_roof(result)
    if above:
        text += (f" {len(above)} point(s) above the roof: the bandwidth roof is a copy of a "
                 "buffer far larger than the caches, and a layer whose data stays in the caches "
                 "moves its bytes faster; above the compute roof, see the peak note.")
    return text


def ridge(result) -> float:
    """The intensity (FLOP/byte) where the bandwidth roof meets the compute roof."""
    return result.peak_tflops * 1e12 / (result.bandwidth_gbs * 1e9)


def plot(result, path: str) -> str:
    """Draw the roofline into `path` (.svg or .png); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = points(result)
    every = [p for pts in found.values() for p in pts]
    low = min([p[1] for p in every] + [ridge(result) / 100]) / 2
    high = max([p[1] for p in every] + [ridge(result) * 10]) * 2
    figure, axes = plt.subplots(figsize=(8, 5.5))
    xs = [low * (high / low) ** (i / 200) for i in range(201)]
    roof = [min(result.peak_tflops, x * result.bandwidth_gbs / 1e3) for x in xs]
    axes.plot(xs, roof, color="black", linewidth=1.5,
              label=f"roof: {result.peak_tflops:.3g} TFLOP/s, {result.bandwidth_gbs:.3g} GB/s")
    for form, pts in found.items():
        if pts:
            axes.scatter([p[1] for p in pts], [p[2] for p in pts], alpha=0.7,
                         marker=MARKERS.get(form, "x"), label=f"form ({form}) layers")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOP / byte moved: weights + input + output)")
    axes.set_ylabel("achieved TFLOP/s (2 x multiply-adds / self time)")
    axes.set_title(f"{result.spec.name}, batch {result.batch_size}, {result.settings['dtype']}"
                   f", {result.settings['mode']} on {result.device_name}", fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text
        figure.savefig(path)
    plt.close(figure)
    return path
