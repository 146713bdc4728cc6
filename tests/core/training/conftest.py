"""A tiny, fast configuration for trainer tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

import manyview

TINY = """
[run]
recipe = "contrastive"
seed = 3
steps = {steps}
batch_size = 16
log_every = 2
metrics_every = 4
checkpoint_every = {every}
keep_checkpoints = 2

[data]
name = "synthetic"
options = {{ modalities = {{ a = 8, b = 12 }}, num_samples = 256, num_classes = 4 }}

[optimizer]
name = "adamw"
lr = 0.005

[schedule]
warmup_steps = 3

[modalities.a]
encoder = "mlp"
encoder_options = {{ output_dim = 16, hidden_dim = 32, dropout = 0.1 }}
num_views = 2
views = [{{ name = "gaussian_noise", options = {{ std = 0.3 }} }}]
projector_dim = 8

[modalities.b]
encoder = "mlp"
encoder_options = {{ output_dim = 16, hidden_dim = 32 }}
views = [{{ name = "feature_mask", options = {{ p = 0.3 }} }}]
projector_dim = 8

[[losses]]
name = "mv_infonce"
options = {{ temperature = 0.2 }}

[[losses]]
name = "isogclr"
weight = 0.5
"""


@pytest.fixture
def tiny_config(tmp_path: Path):
    """Write the tiny configuration and return its path."""

    def make(steps: int = 12, every: int = 4, extra: str = "") -> Path:
        path = tmp_path / "tiny.toml"
        path.write_text(TINY.format(steps=steps, every=every) + textwrap.dedent(extra))
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
