"""What the image recipes' tests share: a tiny labelled image dataset, a configuration of
one small-CNN image modality, and building a recipe and taking a checked step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils.data import default_collate

import manyview
from manyview.config import validate


class TinyImages:
    """8 x 8 single-channel uint8 images of two classes (a bright square's position)."""

    def __init__(self, n: int = 16, labels: bool = True, channels: int = 1, side: int = 8):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 60, (n, channels, side, side), dtype=torch.uint8, generator=g)
        self.y = torch.arange(n) % 2
        for i in range(n):
            r = 0 if self.y[i] == 0 else side // 2
            self.x[i, :, r : r + side // 2, r : r + side // 2] = 220
        self.labels = labels

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.x[i], "index": i}
        if self.labels:
            item["label"] = int(self.y[i])
        return item


def _config(recipe: str, losses=("infonce",), **image) -> dict:
    modality = {
        "encoder": "small_cnn",
        "encoder_options": {"in_chans": 1, "width": 8, "output_dim": 32},
    }
    modality.update(image)
    return validate(
        {
            "run": {"recipe": recipe},
            "data": {"name": "tiny"},
            "modalities": {"image": modality},
            "losses": [{"name": name} for name in losses],
        }
    )


def _build(recipe: str, dataset=None, **kwargs):
    dataset = dataset or TinyImages()
    cfg = _config(recipe, **kwargs)
    return manyview.entry("recipe", recipe).load()(cfg, dataset), dataset


def _step(recipe, dataset, n=8):
    batch = default_collate([dataset[i] for i in range(n)])
    out = recipe.step(batch, torch.Generator().manual_seed(0))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in recipe.model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return out


@pytest.fixture
def tiny_images() -> type[TinyImages]:
    """The dataset class: ``tiny_images(n=16, labels=True, channels=1, side=8)``."""
    return TinyImages


@pytest.fixture
def image_config() -> Callable[..., dict]:
    """``image_config(recipe, losses=("infonce",), **image)``: a validated configuration of
    one ``image`` modality (a small CNN; ``image`` updates its table)."""
    return _config


@pytest.fixture
def build() -> Callable[..., tuple[Any, Any]]:
    """``build(recipe, dataset=None, **kwargs)``: the recipe built on ``dataset`` (default a
    :class:`TinyImages`) from ``image_config(recipe, **kwargs)``, and the dataset."""
    return _build


@pytest.fixture
def step() -> Callable[..., Any]:
    """``step(recipe, dataset, n=8)``: one step on the first ``n`` samples, backpropagated;
    checks a finite loss and finite gradients, returns the step's output."""
    return _step
