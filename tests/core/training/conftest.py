"""A tiny, fast configuration for trainer tests, and a loss that turns NaN."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import manyview

# The core's two-modality configuration (tests/core/conftest.py) with dropout and random
# views, so that resume, GradCache and the checkpointed RNG states have randomness to keep.
RANDOM = (
    "modalities.a.encoder_options.dropout=0.1",
    "modalities.a.num_views=2",
    'modalities.a.views=[{ name = "gaussian_noise", options = { std = 0.3 } }]',
    'modalities.b.views=[{ name = "feature_mask", options = { p = 0.3 } }]',
)


@pytest.fixture(scope="session")
def tiny_toml(two_modalities) -> Callable[..., str]:
    """The text of the tiny configuration: ``tiny_toml(steps, every, extra)``."""

    def text(steps: int = 12, every: int = 4, extra: str = "") -> str:
        overrides = [*RANDOM, f"run.steps={steps}", f"run.checkpoint_every={every}"]
        return two_modalities(overrides, extra)

    return text


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_toml: Callable[..., str]) -> Callable[..., Path]:
    """Write the tiny configuration and return its path."""

    def make(steps: int = 12, every: int = 4, extra: str = "") -> Path:
        path = tmp_path / "tiny.toml"
        path.write_text(tiny_toml(steps, every, extra))
        return path

    return make


class NaNAfter(torch.nn.Module):
    """A loss that is NaN on calls ``after`` .. ``recover - 1`` (counting from 1)."""

    min_views, max_views, needs = 2, None, ()

    def __init__(self, after: int = 3, recover: int = 10**9) -> None:
        super().__init__()
        self.calls, self.after, self.recover = 0, after, recover
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, views, **_):
        self.calls += 1
        value = views.pow(2).mean() * self.scale
        if self.after <= self.calls < self.recover:
            return value * float("nan")
        return value


class _NaNPlugin:
    @manyview.hookimpl
    def manyview_register_losses(self, register):
        register("nan_after", NaNAfter)


@pytest.fixture
def nan_loss(fresh_plugins: None) -> None:
    """Register the loss ``nan_after`` (:class:`NaNAfter`) for this test."""
    from manyview import manager

    manager.register_plugin(_NaNPlugin(), name="nanplugin")
