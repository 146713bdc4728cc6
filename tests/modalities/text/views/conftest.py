"""What the text views' tests share: seeded generators and a batch of awkward texts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


@pytest.fixture
def g() -> Callable[[int], torch.Generator]:
    """``g(seed)``: a CPU ``torch.Generator`` seeded with ``seed``."""
    return lambda seed: torch.Generator().manual_seed(seed)


@pytest.fixture
def texts() -> list[str]:
    """Five texts: a sentence, a phrase, one word, an empty one, a double space."""
    return [
        "a photo of the digit seven on a table",
        "the spoken word three said twice",
        "one",
        "",
        "two  words",
    ]
