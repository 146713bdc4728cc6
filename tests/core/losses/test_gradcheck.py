"""torch.autograd.gradcheck in float64 for every loss, on small inputs."""

from __future__ import annotations

import copy

import pytest
import torch

import manyview
from manyview.testing import build

# Losses whose gradient deliberately stops somewhere are checked with the stop removed
# (the stopped form is checked against lightly and the float64 references). iSogCLR's
# gradient is by design not the derivative of its value (a surrogate whose gradient is that
# of the objective F): tests/core/losses/test_isogclr.py checks it against autograd of F.
FULL_GRADIENT = {
    "dclw": {"detach_weights": False},
    "supremix": {"detach_mixtures": False, "neg_beta": 0.3},
}
NAMES = [
    n
    for n in manyview.available("loss")
    if n != "isogclr" and getattr(manyview.entry("loss", n).load(), "takes", "views") == "views"
]


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    loss = build("loss", name, **FULL_GRADIENT.get(name, {})).double()
    views, kwargs = loss.example_inputs(
        5, None, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    views.requires_grad_(True)

    def fn(x):
        return copy.deepcopy(loss)(x, **kwargs)

    assert torch.autograd.gradcheck(fn, (views,), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_gradcheck_learnable_scale(name):
    loss = manyview.create("loss", name, learnable=True).double()
    views = torch.randn(5, 2, 4, dtype=torch.float64, requires_grad=True)
    params = tuple(loss.parameters())
    for p in params:
        p.requires_grad_(True)

    def fn(x, *ps):
        clone = copy.deepcopy(loss)
        with torch.no_grad():
            for dst, src in zip(clone.parameters(), ps, strict=True):
                dst.copy_(src)
        return clone(x)

    # gradient w.r.t. views; the parameters' gradient is checked below by autograd vs finite diff
    assert torch.autograd.gradcheck(lambda x: fn(x, *params), (views,), eps=1e-6, atol=1e-5)
    value = loss(views)
    grads = torch.autograd.grad(value, params)
    for p, g in zip(params, grads, strict=True):
        with torch.no_grad():
            p += 1e-6
            up = loss(views)
            p -= 2e-6
            down = loss(views)
            p += 1e-6
        assert torch.allclose(g, (up - down) / 2e-6, rtol=1e-4, atol=1e-6)
