"""What the image views' tests share: seeded generators and random images."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def gen() -> Callable[..., torch.Generator]:
    """``gen(seed=0)``: a CPU ``torch.Generator`` seeded with ``seed``."""
    return _gen


@pytest.fixture
def images() -> Callable[..., torch.Tensor]:
    """``images(n=6, c=3, h=16, w=16, seed=0)``: a seeded batch of random images in [0, 1]."""

    def make(n: int = 6, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
        return torch.rand(n, c, h, w, generator=_gen(seed))

    return make
