"""Shared test data of the distillation tests."""

from __future__ import annotations

import torch

RTOL = 1e-9


def randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    """``scale`` times standard normal float64 values of ``shape``, from generator ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)
