"""Built-ins name the built-ins they default to in the qualified form, so a third-party
plugin registering the same bare name cannot make them ambiguous."""

from __future__ import annotations

import torch
from torch import nn

import manyview
from manyview import manager
from manyview.distill.kd import KD
from manyview.losses import InfoNCE


class _Shadow(nn.Module):
    """A third-party loss that happens to share a built-in's name."""


def _register_shadows() -> None:
    class Shadows:
        @manyview.hookimpl
        def manyview_register_losses(self, register):
            register("infonce", _Shadow)
            register("kd", _Shadow)

    info = manager.register_plugin(Shadows(), name="shadows", distribution="third-party")
    assert info.status == "loaded", info.error


def test_pwe_and_divergence_clip_defaults_survive_a_plugin_with_the_same_names(fresh_plugins):
    _register_shadows()
    assert "third-party:infonce" in manyview.available("loss")  # the bare name is ambiguous
    pwe = manyview.create("loss", "pwe")
    assert isinstance(pwe.base, InfoNCE)
    assert torch.isfinite(pwe(torch.randn(6, 3, 8)))
    clip = manyview.create("loss", "divergence_clip")
    assert isinstance(clip.base, KD)
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    assert torch.isfinite(clip(s, targets=t))
