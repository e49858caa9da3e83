"""Weight transfer between forms (a), (b), (c): the same function, in another form.

Every block is read into its form-(c) ("dense") state: per-path convolutions concatenated
along output channels for the layers that share their input, along input channels for the
layer that shares its output; per-path BNs concatenated channel-wise. Then it is written
out as the target form. Stem, shortcuts and classifier have the same keys in every form.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from . import registry
from .network import build_model


def _entry(block: nn.Module):
    """(BlockType, Form) of a block module: the registry says how its weights map."""
    entry = registry.of_module(block)
    if entry is None:
        raise TypeError(f"convert: {type(block).__name__} is not a registered block form")
    return entry


def _cat_path_states(modules: list[nn.Module], dim: int) -> dict[str, torch.Tensor]:
    """Concatenate the states of C like modules; counters (num_batches_tracked) are shared."""
    states = [m.state_dict() for m in modules]
    merged = {}
    for key, first in states[0].items():
        if first.dim() == 0:
            merged[key] = first.clone()
        else:
            merged[key] = torch.cat([s[key] for s in states], dim=dim)
    return merged


def dense_state(block: nn.Module) -> dict[str, torch.Tensor]:
    """The block's state as form (c) names it (conv1.weight, bn1.running_mean, ...)."""
    kind, form = _entry(block)
    if form.merge == "dense":
        return {k: v.clone() for k, v in block.state_dict().items()}
    state = {}
    for layer in kind.split_layers:
        parts = [getattr(path, layer) for path in block.paths]
        for key, value in _cat_path_states(parts, dim=0).items():
            state[f"{layer}.{key}"] = value
    if form.merge == "sum":  # sum of per-path last convs == one conv on the concatenation
        parts = [getattr(path, kind.last_conv) for path in block.paths]
        state[f"{kind.last_conv}.weight"] = torch.cat([p.weight.detach() for p in parts], dim=1)
    for key, value in block.state_dict().items():
        if not key.startswith("paths."):
            state[key] = value.clone()
    return state


def _own_state(block: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A form-(c) state under the keys of `block`'s own form (its C paths' pieces cloned, so
    that no two parameters share storage)."""
    kind, form = _entry(block)
    if form.merge == "dense":
        return dict(state)
    count = len(block.paths)
    own = {}
    for key, value in state.items():
        layer, _, name = key.partition(".")
        if layer in kind.split_layers:
            pieces = value.chunk(count, dim=0) if value.dim() else [value] * count
            for i, piece in enumerate(pieces):
                own[f"paths.{i}.{key}"] = piece.clone()
        elif layer == kind.last_conv and form.merge == "sum":
            for i, piece in enumerate(value.chunk(count, dim=1)):
                own[f"paths.{i}.{key}"] = piece.clone()
        else:
            own[key] = value
    return own


def load_dense_state(block: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Write a form-(c) state into a block of any form."""
    block.load_state_dict(_own_state(block, state), strict=True)


def convert(model: nn.Module, form: str) -> nn.Module:
    """A model of the same spec in `form`, computing the same function: weights and BN
    running statistics are copied (not re-initialised), on the same device and dtype.

    The target is built on the meta device and handed the whole state at once
    (`load_state_dict(assign=True)`): no memory is allocated and filled twice, and there is
    no per-block load (issue 15: both took most of a ResNeXt-101's conversion)."""
    spec = getattr(model, "spec", None)
    if spec is None:
        raise TypeError("convert expects a model made by builder.build_model (it has .spec)")
    target_spec = spec.replace(form=form)  # validates form
    target = build_model(target_spec, device="meta")
    source_blocks = dict(_blocks(model))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not any(k.startswith(name + ".") for name in source_blocks)}
    for name, block in _blocks(target):
        for key, value in _own_state(block, dense_state(source_blocks[name])).items():
            state[f"{name}.{key}"] = value
    loaded = target.load_state_dict(state, strict=False, assign=True)
    if loaded.missing_keys or loaded.unexpected_keys:
        raise RuntimeError("convert: keys not transferred: "
                           f"{loaded.missing_keys + loaded.unexpected_keys}")
    target.train(model.training)
    return target


def _blocks(model: nn.Module):
    for stage in model.stage_names:
        for i, block in enumerate(getattr(model, stage)):
            yield f"{stage}.{i}", block


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN random affine parameters and running statistics, and the classifier a
    random bias, so that a comparison between forms tests everything (fresh BNs are 1 and 0).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                for tensor, low, high in ((module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2),
                                          (module.running_mean, -0.2, 0.2),
                                          (module.running_var, 0.5, 1.5)):
                    values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
                    tensor.copy_(low + (high - low) * values)
    return model


# The forms compute one function and differ only by float rounding. How much rounding a network
# does grows with its output's magnitude and its depth, so the bound is measured, not fixed: the
# reference form's own float32 result against its float64 result. In float64 the rounding is
# 2^-29 as large (unit roundoff 2^-53 against 2^-24). A real fault (a stride on the wrong
# layer, a BN slice off by one) changes the output by far more (tests/test_convert.py).
BOUND_MULTIPLE = 8
FLOAT64_SHARE = 2.0 ** -29
FLOAT32_ROUNDOFF = 2.0 ** -24


def rounding_bound(reference64: torch.Tensor, reference32: torch.Tensor, dtype) -> dict:
    """The bound on max |difference| between two forms in `dtype` (float64 or float32), from
    the reference form's outputs in float64 and float32 on the same batch: BOUND_MULTIPLE x its
    float32 rounding (max |float32 - float64|), x FLOAT64_SHARE in float64. Floor, where that
    rounding is 0: one float32 unit roundoff of the largest output (or the smallest normal
    float32). Returns {"bound", "rounding", "bound_text", "why"}; a float32 result that is not
    finite (overflow) gives bound NaN, which no difference meets."""
    reference64 = reference64.double()
    rounding = (reference32.double() - reference64).abs().max().item()
    scale = reference64.abs().max().item()
    if not math.isfinite(rounding) or not math.isfinite(scale):
        return {"bound": math.nan, "rounding": rounding,
                "bound_text": "no bound: the reference's float32 result is not finite",
                "why": "the reference form overflowed in float32 (or float64), so its "
                       "rounding cannot be measured; use a smaller network or image"}
    floor = max(scale * FLOAT32_ROUNDOFF, torch.finfo(torch.float32).tiny)
    used = max(rounding, floor)
    share = FLOAT64_SHARE if dtype == torch.float64 else 1.0
    bound = BOUND_MULTIPLE * used * share
    what = (f"the reference's own float32 rounding ({rounding:.1e})" if rounding >= floor
            else f"the floor {floor:.1e} (the reference's float32 rounding is {rounding:.1e})")
    text = f"<= {BOUND_MULTIPLE} x {what}" + (" x 2^-29" if share != 1.0 else "")
    why = ("the forms compute one function, so they may differ only by float rounding; the "
           "reference form's float32 result against its float64 result measures that rounding "
           "at this output's magnitude and depth"
           + ("; float64 rounds 2^-29 as much as float32" if share != 1.0 else ""))
    return {"bound": bound, "rounding": rounding, "bound_text": text, "why": why}


def difference_row(reference_form: str, form: str, dtype, mode: str, expected: torch.Tensor,
                   got: torch.Tensor, bound: dict) -> dict:
    """One comparison: form, dtype, mode, max_abs_diff, rel_error (max |diff| / max |reference
    output|), bound (on max_abs_diff), bound_text, why, rounding, ok."""
    diff = (expected - got).abs().max().item()
    scale = expected.abs().max().item() or 1.0
    ok = diff <= bound["bound"]  # False for NaN on either side
    return {"from": reference_form, "form": form, "dtype": str(dtype).split(".")[-1],
            "mode": mode, "max_abs_diff": diff, "rel_error": diff / scale, **bound, "ok": ok}


def check_equivalence(spec, batch_size: int = 2, seed: int = 0,
                      dtypes=(torch.float64, torch.float32), modes=("eval", "train"),
                      state_dict=None):
    """Build `spec` with random weights and BN statistics (or with `state_dict`: loaded
    weights, strictly), convert it to the other forms and run one random batch through each.
    Returns rows of dicts (`difference_row`), per dtype, form and mode. The reference (the
    built model itself) also runs in float64 and float32 whatever `dtypes` is: its own
    rounding sets the bound (`rounding_bound`)."""
    rows = []
    torch.manual_seed(seed)
    source = build_model(spec)
    if state_dict is None:
        randomize_(source, seed)
    else:
        source.load_state_dict(state_dict, strict=True)
    others = [f for f in registry.FORMS if f != spec.form]
    generator = torch.Generator().manual_seed(seed + 1)
    batch = torch.randn(batch_size, spec.in_channels, spec.image_size, spec.image_size,
                        generator=generator, dtype=torch.float64)
    # fresh copies per mode: train mode updates the running statistics. The reference is the
    # built model itself, not a conversion of it, so that a fault common to every conversion
    # cannot cancel out.
    expected = {}
    for dtype in (torch.float64, torch.float32):
        for mode in modes:
            ref = copy.deepcopy(source).to(dtype).train(mode == "train")
            with torch.no_grad():
                expected[dtype, mode] = ref(batch.to(dtype))
            del ref
    for dtype in dtypes:
        base = source.to(dtype)
        for form in others:
            for mode in modes:
                other = convert(base, form).train(mode == "train")
                with torch.no_grad():
                    got = other(batch.to(dtype))
                del other
                bound = rounding_bound(expected[torch.float64, mode],
                                       expected[torch.float32, mode], dtype)
                rows.append(difference_row(spec.form, form, dtype, mode,
                                           expected[dtype, mode], got, bound))
    return rows
