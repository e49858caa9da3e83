"""Golden files from torchvision, and a strict-load check against it.

torchvision does not import beside the CPU torch 2.13.0 of .venv, so run this with a venv that
has `torch==2.14.1 torchvision==0.29.1` (benchmarks/bench_vs_torchvision.py makes one in
benchmarks/.venv-torchvision):

    benchmarks/.venv-torchvision/bin/python scripts/torchvision_golden.py --write   # regenerate
    benchmarks/.venv-torchvision/bin/python scripts/torchvision_golden.py --check   # compare

--write records, for every torchvision preset, each state_dict key with its shape and the
parameter count in tests/golden/torchvision_state_dicts.json (tests/test_network.py compares
builder's models to it). --check loads each torchvision model's state_dict into
builder.build_model(preset) with strict=True and prints the max |difference| of the outputs.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import torch
import torchvision

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from builder import PRESETS, build_model  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "torchvision_state_dicts.json"
TORCHVISION_PRESETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                       "wide_resnet50_2", "resnext50_32x4d", "resnext101_32x8d",
                       "resnext101_64x4d"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the golden file")
    parser.add_argument("--check", action="store_true", help="strict load + output compare")
    args = parser.parse_args()
    golden = {"torch": torch.__version__, "torchvision": torchvision.__version__, "models": {}}
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
    if args.write:
        GOLDEN.write_text(json.dumps(golden, indent=0, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN.relative_to(ROOT)} ({len(TORCHVISION_PRESETS)} models, "
              f"torchvision {torchvision.__version__})")
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main())
