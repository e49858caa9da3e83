"""Golden files from torchvision, and a strict-load check against it.

torchvision does not import beside the CPU torch 2.13.0 of .venv, so run this with a venv that
has `torch==2.14.1 torchvision==0.29.1` (benchmarks/bench_vs_torchvision.py makes one in
benchmarks/.venv-torchvision):

    benchmarks/.venv-torchvision/bin/python scripts/torchvision_golden.py --write   # regenerate
    benchmarks/.venv-torchvision/bin/python scripts/torchvision_golden.py --check   # compare

--write records two golden files that tests/test_network.py compares builder's models to:
- tests/golden/torchvision_state_dicts.json: for every torchvision preset, each state_dict key
  with its shape, and the parameter count;
- tests/golden/torchvision_outputs.json: for a few presets (10 classes), torchvision's output
  in float64 on a fixed 64x64 batch, with every weight and BN statistic set by
  `deterministic_state` (a formula, not a random generator, so that the CI's torch, another
  version, recreates the same weights exactly).
--check loads each torchvision model's state_dict into builder.build_model(preset) with
strict=True and prints the max |difference| of the outputs at 224x224.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "torchvision_state_dicts.json"
GOLDEN_OUTPUTS = ROOT / "tests" / "golden" / "torchvision_outputs.json"
TORCHVISION_PRESETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                       "wide_resnet50_2", "resnext50_32x4d", "resnext101_32x8d",
                       "resnext101_64x4d"]
# Outputs: one basic-block net, one ResNet bottleneck net, one ResNeXt; 10 classes, 64x64.
OUTPUT_PRESETS = ["resnet18", "resnet50", "resnext50_32x4d"]
OUTPUT_CLASSES = 10
OUTPUT_SHAPE = (2, 3, 64, 64)


def _wave(count: int, phase: float) -> torch.Tensor:
    """`count` values in [-1, 1] from a formula: the same on every torch version."""
    index = torch.arange(count, dtype=torch.float64)
    return torch.sin(index * 0.7071 + phase) * torch.cos(index * 0.0137 + 2 * phase)


def deterministic_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor of the state_dict from a formula (float64), scaled so that activations stay
    of order one through 50 layers: conv and linear weights by 1/sqrt(fan-in), BN weights in
    [0.25, 0.75] and running variances in [0.5, 1.5] (positive), biases and means small."""
    state = {}
    for i, (key, value) in enumerate(sorted(model.state_dict().items())):
        if value.dtype == torch.int64:  # num_batches_tracked
            state[key] = torch.zeros_like(value)
            continue
        wave = _wave(value.numel(), phase=0.37 * i).reshape(value.shape)
        if key.endswith("running_var"):
            wave = 1.0 + 0.5 * wave
        elif key.endswith("weight") and value.dim() == 1:  # BN scale
            wave = 0.5 + 0.25 * wave
        elif key.endswith("weight"):  # conv or linear
            wave = wave * math.sqrt(3.0 / (value[0].numel()))
        else:  # biases, running means
            wave = 0.1 * wave
        state[key] = wave
    return state


def golden_batch() -> torch.Tensor:
    return _wave(math.prod(OUTPUT_SHAPE), phase=0.5).reshape(OUTPUT_SHAPE)


def main() -> int:
    import torchvision

    sys.path.insert(0, str(ROOT))
    from builder import PRESETS, build_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the golden files")
    parser.add_argument("--check", action="store_true", help="strict load + output compare")
    args = parser.parse_args()
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    golden = {**versions, "models": {}}
    worst = 0.0
    for name in TORCHVISION_PRESETS:
        with torch.device("meta") if not args.check else torch.device("cpu"):
            reference = getattr(torchvision.models, name)()
        state = reference.state_dict()
        golden["models"][name] = {
            "params": sum(p.numel() for p in reference.parameters()),
            "state_dict": {k: list(v.shape) for k, v in state.items()},
        }
        if args.check:
            torch.manual_seed(0)
            ours = build_model(PRESETS[name])
            ours.load_state_dict(state, strict=True)
            reference.eval()
            ours.eval()
            batch = torch.randn(2, 3, 224, 224)
            with torch.no_grad():
                diff = (reference(batch) - ours(batch)).abs().max().item()
            worst = max(worst, diff)
            print(f"{name:18s} strict load ok, params {golden['models'][name]['params']:,}, "
                  f"max |output difference| {diff:.3g}")
    outputs = {**versions, "shape": list(OUTPUT_SHAPE), "num_classes": OUTPUT_CLASSES,
               "models": {}}
    for name in OUTPUT_PRESETS:
        reference = getattr(torchvision.models, name)(num_classes=OUTPUT_CLASSES).double()
        reference.load_state_dict(deterministic_state(reference), strict=True)
        with torch.no_grad():
            logits = reference.eval()(golden_batch())
        outputs["models"][name] = [[float(v) for v in row] for row in logits]
        print(f"{name:18s} torchvision output, float64, {OUTPUT_SHAPE}: "
              f"{logits[0, :3].tolist()} ...")
    if args.write:
        GOLDEN.write_text(json.dumps(golden, indent=0, sort_keys=True) + "\n")
        GOLDEN_OUTPUTS.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN.relative_to(ROOT)} ({len(TORCHVISION_PRESETS)} models) and "
              f"{GOLDEN_OUTPUTS.relative_to(ROOT)} ({len(OUTPUT_PRESETS)} models), "
              f"torchvision {torchvision.__version__}")
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main())
