"""What the speech views' tests share: seeded generators."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


@pytest.fixture
def g() -> Callable[[int], torch.Generator]:
    """``g(seed)``: a CPU ``torch.Generator`` seeded with ``seed``."""
    return lambda seed: torch.Generator().manual_seed(seed)
