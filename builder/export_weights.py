"""Exports that carry weights: safetensors, a timm folder, torch.export's .pt2; and convert.

Each takes a spec and, optionally, a state dict (loaded from a checkpoint); without one the
weights are random (a fresh initialisation). Each says which: in its metadata (safetensors,
timm) and in what it returns. Weights are written in form (c), torchvision's key layout, which
timm's ResNet shares key for key: a model of form (a) or (b) is converted first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .convert import convert
from .guards import check as check_resources
from .infer import load_into
from .network import build_model
from .share import preset_of
from .spec import ResNeXtSpec
from .weights import save_safetensors

DENSE_FORM = "c"  # torchvision's layout: the form whose keys are torchvision's and timm's
RANDOM = "random (a fresh initialisation)"
# presets whose names are timm's own ResNet entry points, with the same architecture
TIMM_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
              "resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d", "resnext101_64x4d")
# timm's ResNet(...) arguments written to config.json's model_args
TIMM_ARGS = ("layers", "cardinality", "base_width", "stem_width", "stem_type", "num_classes",
             "in_chans")


class TimmUnsupported(ValueError):
    """A spec that timm's ResNet cannot express; the message names each reason."""


@dataclass(frozen=True)
class Weighted:
    """A model ready to export and the words for its weights: "loaded from X" or random."""

    model: torch.nn.Module
    weights: str


def weighted_model(spec: ResNeXtSpec, state_dict=None, source: str | None = None,
                   batch_size: int = 1) -> Weighted:
    """build_model(spec) in eval mode holding `state_dict` (checked against the spec, see
    builder.infer.load_into) or fresh weights. Guarded before anything is built."""
    check_resources(spec, batch_size=batch_size)
    if state_dict is None:
        return Weighted(build_model(spec).eval(), RANDOM)
    label = f"loaded from {source}" if source else "loaded"
    return Weighted(load_into(spec, state_dict, source or "weights"), label)


def dense_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict in form (c): torchvision's (and timm's) keys."""
    if model.spec.form != DENSE_FORM:
        model = convert(model, DENSE_FORM)
    return model.state_dict()


def _metadata(spec: ResNeXtSpec, weights: str) -> dict[str, str]:
    return {"format": "pt", "spec": spec.replace(form=DENSE_FORM).to_json(indent=None),
            "weights": weights, "layout": "torchvision (form c)", "exporter": "resnext-builder"}


def export_safetensors(spec: ResNeXtSpec, path, state_dict=None, source=None) -> Path:
    """The weights as .safetensors in torchvision's key layout (form (c)); the metadata holds
    the spec as JSON and `weights`: "loaded from X" or "random (...)". Returns the path."""
    made = weighted_model(spec, state_dict, source)
    return save_safetensors(dense_state(made.model), path, _metadata(spec, made.weights))


def convert_state(spec: ResNeXtSpec, state_dict, form: str, source=None) -> dict:
    """`state_dict` (of `spec`) as a state dict of the same network in `form`: weights and
    BN statistics, the same function (builder.convert)."""
    made = weighted_model(spec, state_dict, source)
    target = made.model if spec.form == form else convert(made.model, form)
    return target.state_dict()


def timm_problems(spec: ResNeXtSpec) -> list[str]:
    """What timm's ResNet (timm/models/resnet.py) cannot express of the spec; [] if nothing."""
    problems = []
    if spec.stem != "imagenet":
        problems.append("the CIFAR stem (3x3/1 conv, no max-pool): timm's stems all stride "
                        "2 and max-pool")
    if spec.stem_width != 64:
        problems.append(f"stem_width {spec.stem_width}: with stem_type '' timm's stem has 64 "
                        "channels (its stem_width sets only the deep stems)")
    if len(spec.depths) != 4:
        problems.append(f"{len(spec.depths)} stages: timm's ResNet has four (layer1..layer4)")
    if spec.block == "bottleneck" and spec.stride_on != "3x3":
        problems.append("the stride on the 1x1 (ResNet v1): timm's Bottleneck strides on the "
                        "3x3")
    if spec.block == "basic" and any(spec.width(i) != spec.planes(i)
                                     for i in range(len(spec.depths))):
        problems.append(f"a basic block {spec.width(0)} wide in stage 1: timm's BasicBlock "
                        "takes only cardinality 1 and base_width 64 (64 wide)")
    return problems


def timm_config(spec: ResNeXtSpec, weights: str = RANDOM) -> dict:
    """config.json for timm (`timm.create_model("hf-hub:..." or a local folder)`):
    `architecture`, a timm entry point (the preset's name where it is one of timm's, else
    resnet50 / resnet18 for the block type), and `model_args` for timm's ResNet, which
    override the entry point's. Raises TimmUnsupported naming what timm cannot express."""
    problems = timm_problems(spec)
    if problems:
        raise TimmUnsupported(f"timm's ResNet cannot express {spec.name}: "
                              + "; ".join(problems))
    base = preset_of(spec.replace(form=DENSE_FORM, image_size=224, zero_init_residual=False))
    dense_basic = spec.block == "basic"  # one dense block: timm's C=1, base_width 64
    architecture = base if base in TIMM_NAMES else (
        "resnet18" if dense_basic else "resnet50")
    model_args = {"layers": list(spec.depths),
                  "cardinality": 1 if dense_basic else spec.cardinality,
                  "base_width": 64 if dense_basic else spec.width_per_group,
                  "stem_width": spec.stem_width, "stem_type": "",
                  "num_classes": spec.num_classes, "in_chans": spec.in_channels}
    size = spec.image_size
    return {"architecture": architecture, "num_classes": spec.num_classes,
            "num_features": spec.out_channels(len(spec.depths) - 1),
            "model_args": model_args,
            "pretrained_cfg": {"input_size": [spec.in_channels, size, size],
                               "num_classes": spec.num_classes, "first_conv": "conv1",
                               "classifier": "fc"},
            "builder": {"spec": spec.replace(form=DENSE_FORM).to_dict(), "weights": weights}}


def export_timm(spec: ResNeXtSpec, directory, state_dict=None, source=None) -> Path:
    """A folder timm reads: config.json (timm_config) and model.safetensors (form (c)
    weights). Refuses (TimmUnsupported) before writing anything. Returns the folder."""
    timm_config(spec)  # refuse first
    made = weighted_model(spec, state_dict, source)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(
        json.dumps(timm_config(spec, made.weights), indent=2) + "\n", encoding="utf-8")
    save_safetensors(dense_state(made.model), directory / "model.safetensors",
                     _metadata(spec, made.weights))
    return directory


def export_pt2(spec: ResNeXtSpec, path, state_dict=None, source=None) -> Path:
    """The model in eval mode through torch.export (input (N, in_channels, size, size), N
    free), saved with torch.export.save: a .pt2 that torch.export.load, Netron and Model
    Explorer open. Weights loaded or random. Returns the path."""
    made = weighted_model(spec, state_dict, source, batch_size=2)
    size = spec.image_size
    images = torch.randn(2, spec.in_channels, size, size,  # batch 2: N stays free
                         generator=torch.Generator().manual_seed(0))
    program = torch.export.export(made.model, (images,),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(path), extra_files={"weights.txt": made.weights})
    return Path(path)
