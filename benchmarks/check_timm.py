"""Do the exported weights open in timm and torchvision and compute the same function?

    .venv/bin/python benchmarks/check_timm.py [--python benchmarks/.venv-torchvision/bin/python]

For each spec below: the builder's model with random weights (every BN's statistics and
affine randomised, so that a misplaced tensor shows), exported with `export --format timm`
(config.json + model.safetensors) and as plain .safetensors, and its outputs on a fixed batch.
Then, in an interpreter that has timm and torchvision (this project's CPU torch cannot import
torchvision), each folder is opened the ways a user would: `timm.create_model("local-dir:...")`
(timm reads config.json itself), `timm.create_model(architecture, **model_args)` plus
`load_state_dict` of model.safetensors, and, for torchvision's presets, torchvision's model
plus `load_state_dict` (strict). Prints the largest difference to the builder's outputs,
relative to the outputs' largest magnitude: float32 rounding only is at most about 1e-6 here
(the same kernels on the same CPU, summed in another order at most).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from builder import PRESETS, build_model, randomize_  # noqa: E402
from builder.export_weights import export_safetensors, export_timm  # noqa: E402

SPECS = {
    "resnext50_32x4d": PRESETS["resnext50_32x4d"].replace(image_size=64),
    "resnet18": PRESETS["resnet18"].replace(image_size=64),
    "wide_resnet50_2": PRESETS["wide_resnet50_2"].replace(image_size=64),
    "custom ResNeXt (8x16d, depths 2,1,1,1, 10 classes)": PRESETS["resnext50_32x4d"].replace(
        cardinality=8, width_per_group=16, depths=(2, 1, 1, 1), num_classes=10, image_size=64),
}
TORCHVISION = {"resnext50_32x4d", "resnet18", "wide_resnet50_2"}

WORKER = r'''
import json, sys
import torch, timm, torchvision
from safetensors.torch import load_file
cases = json.loads(sys.stdin.read())
out = {"versions": {"torch": torch.__version__, "timm": timm.__version__,
                    "torchvision": torchvision.__version__}, "rows": []}
torch.manual_seed(0)
for case in cases:
    images = torch.load(case["images"])
    expected = torch.load(case["outputs"])
    scale = expected.abs().max().item()
    def diff(model):
        with torch.no_grad():
            got = model.eval()(images)
        return (got - expected).abs().max().item() / scale
    config = json.load(open(case["folder"] + "/config.json"))
    weights = load_file(case["folder"] + "/model.safetensors")
    row = {"name": case["name"], "architecture": config["architecture"]}
    row["timm local-dir"] = diff(timm.create_model("local-dir:" + case["folder"],
                                                   pretrained=True))
    made = timm.create_model(config["architecture"], pretrained=False, **config["model_args"])
    made.load_state_dict(weights, strict=True)
    row["timm create_model + load_state_dict"] = diff(made)
    if case["torchvision"]:
        tv = getattr(torchvision.models, case["name"])()
        tv.load_state_dict(load_file(case["plain"]), strict=True)
        row["torchvision + load_state_dict"] = diff(tv)
    out["rows"].append(row)
print(json.dumps(out))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=str(ROOT / "benchmarks/.venv-torchvision/bin/python"))
    args = parser.parse_args()
    cases = []
    with tempfile.TemporaryDirectory() as folder:
        for i, (name, spec) in enumerate(SPECS.items()):
            model = randomize_(build_model(spec), seed=i).eval()
            images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(i))
            with torch.no_grad():
                outputs = model(images)
            base = Path(folder) / f"case{i}"
            torch.save(images, f"{base}-images.pt")
            torch.save(outputs, f"{base}-outputs.pt")
            export_timm(spec, base, state_dict=model.state_dict(), source="check_timm")
            export_safetensors(spec, f"{base}.safetensors", state_dict=model.state_dict())
            cases.append({"name": name, "folder": str(base), "plain": f"{base}.safetensors",
                          "images": f"{base}-images.pt", "outputs": f"{base}-outputs.pt",
                          "torchvision": name in TORCHVISION})
        done = subprocess.run([args.python, "-c", WORKER], input=json.dumps(cases),
                              capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"the timm worker failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    v = result["versions"]
    print(f"builder with torch {torch.__version__}; opened with torch {v['torch']}, timm "
          f"{v['timm']}, torchvision {v['torchvision']}; batch 2 at 64x64, random weights "
          "and BN statistics")
    print("| spec | timm architecture | timm local-dir | timm create_model + load | "
          "torchvision + load |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in result["rows"]:
        tv = row.get("torchvision + load_state_dict")
        print(f"| {row['name']} | {row['architecture']} | {row['timm local-dir']:.1e} | "
              f"{row['timm create_model + load_state_dict']:.1e} | "
              f"{'–' if tv is None else f'{tv:.1e}'} |")


if __name__ == "__main__":
    main()
