"""builder.timing.profile, builder.flops, `python -m builder profile`, the roofline, and the
in-place shortcut add of builder/blocks.py (issue 14)."""

import inspect
import textwrap

import pytest
import torch

from builder import PRESETS, build_model, convert
from builder import blocks as B
from builder.convert import randomize_
from builder.registry import BLOCK_TYPES, FORMS

TINY = PRESETS["resnext50_32x4d"].replace(depths=(1, 1), image_size=32, num_classes=10,
                                          cardinality=4, width_per_group=4)


# -- the in-place shortcut add (item 7) -------------------------------------------------------
def _out_of_place(cls):
    """`cls` with the forward it had before issue 14: `out + identity`, out of place."""
    source = textwrap.dedent(inspect.getsource(cls.forward))
    assert source.count("out += identity") == 1, cls.__name__
    source = source.replace("out += identity", "out = out + identity")
    namespace = {}
    exec(source, vars(B), namespace)  # noqa: S102  (our own source, one line changed)
    return type(f"OutOfPlace{cls.__name__}", (cls,), {"forward": namespace["forward"]})


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("block", sorted(BLOCK_TYPES))
def test_in_place_add_keeps_every_output_bit(block, form):
    """Every form and block type: the output (eval and train mode) and every gradient are
    bit for bit those of the out-of-place add; the backward runs (BN does not save its
    output, so adding into it in place is allowed)."""
    spec = TINY.replace(block=block, form=form, stride_on="3x3")
    torch.manual_seed(0)
    model = randomize_(build_model(spec), 0)
    reference = convert(model, form)  # a copy with the same weights
    for module in reference.modules():
        if type(module) in set(B.BLOCK_CLASSES.values()):
            module.__class__ = _out_of_place(type(module))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reference.eval()(x))
    outputs = []
    for net in (model.train(), reference.train()):
        net.zero_grad()
        out = net(x)
        out.square().sum().backward()
        outputs.append((out, [p.grad for p in net.parameters()]))
    (out, grads), (ref_out, ref_grads) = outputs
    assert torch.equal(out, ref_out)
    assert len(grads) == len(ref_grads) > 0
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads, strict=True))
