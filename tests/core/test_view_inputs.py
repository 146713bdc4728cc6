"""Every registered view refuses a generator that is not a ``torch.Generator`` (a seed) and
inputs on the ``meta`` device with a one-line error, before anything is drawn."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import build


@pytest.mark.parametrize("name", manyview.available("view"))
def test_a_seed_is_not_a_generator(name):
    view = build("view", name)
    x = view.example_inputs(2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"generator must be a torch.Generator") as info:
        view(x, generator=42)
    assert "\n" not in str(info.value) and "manual_seed(42)" in str(info.value)


@pytest.mark.parametrize("name", ["gaussian_noise", "feature_mask", "embedding_noise"])
def test_meta_inputs_are_refused(name):
    view = build("view", name)
    with pytest.raises(ValueError, match="'meta' device"):
        view(torch.randn(2, 16).to("meta"), generator=None)


def test_the_checks_are_added_once():
    view = manyview.create("view", "gaussian_noise")
    from manyview.views.checks import add_view_checks, view_call_hook

    add_view_checks(view)
    assert list(view._forward_pre_hooks.values()).count(view_call_hook) == 1
