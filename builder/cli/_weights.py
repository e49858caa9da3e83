"""--weights FILE for the subcommands that take a checkpoint (not a subcommand itself).

Without --preset or --config the spec is the one the weights tell (builder.infer); the spec
options may then set only what the weights cannot tell, and --form, to which the weights are
converted. With --preset or --config the weights are loaded into that spec, and must fit it.
"""

from __future__ import annotations

import argparse

from ..export_weights import convert_state
from ..infer import fit_problem, infer_spec
from ..spec import ResNeXtSpec, spec_fields
from ..weights import MAX_WEIGHTS_BYTES, WeightsError, read_state_dict
from . import UsageError

# spec fields an option may set beside weights whose spec is inferred
NOT_IN_WEIGHTS = ("form", "stride_on", "image_size", "zero_init_residual")


def add_weights_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--weights", metavar="FILE", help=help_text + " (.safetensors, .pth, .pt "
                   f"or .bin, at most {MAX_WEIGHTS_BYTES:,} bytes; pickles load with "
                   "weights_only=True)")


def given_overrides(args) -> dict:
    return {info.name: getattr(args, info.name) for info in spec_fields()
            if getattr(args, info.name, None) is not None}


def spec_and_weights(spec: ResNeXtSpec, args) -> tuple[ResNeXtSpec, dict | None, str]:
    """(spec, state dict or None, the words for the weights) for a command line."""
    if not getattr(args, "weights", None):
        return spec, None, "random weights"
    name = args.weights
    try:
        state = read_state_dict(name)
        if args.preset or args.config:
            problem = fit_problem(spec, state)
            if problem:
                raise WeightsError(name, f"they do not fit {spec.name}, form ({spec.form}): "
                                   f"{problem}")
            return spec, state, f"weights loaded from {name}"
        inferred = infer_spec(state, source=name)
    except WeightsError as exc:
        raise UsageError(f"--weights: {exc}") from None
    overrides = given_overrides(args)
    told = [k for k in overrides if k not in NOT_IN_WEIGHTS]
    if told:
        info = next(i for i in spec_fields() if i.name == told[0])
        raise UsageError(f"{info.option}: the weights tell it "
                         f"({getattr(inferred.spec, told[0])!r}); leave the option out, or "
                         "give --preset or --config to load the weights into a spec of your own")
    form = overrides.pop("form", inferred.spec.form)
    spec = inferred.spec.replace(**overrides)
    label = f"weights loaded from {name}"
    if form != spec.form:
        state = convert_state(spec, state, form, source=name)
        spec = spec.replace(form=form)
        label += f", converted from form ({inferred.spec.form})"
    return spec, state, label
