"""What the text views share: the example batch and the checks of their options."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from manyview_text._texts import example_sentences

__all__ = ["TextView", "check_p", "positive_int"]


def check_p(p: float, who: str) -> float:
    """``p`` as a float in [0, 1], or a ValueError naming ``who``."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
        raise ValueError(f"{who}: p must lie in [0, 1], got {p!r}")
    return float(p)


def positive_int(value: Any, name: str, who: str) -> int:
    """``value`` as a positive int, or a ValueError naming ``who`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
    return value


class TextView(nn.Module):
    """Shared parts of the text views: the example batch."""

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> list[str]:
        """``n`` short random sentences (3 to 8 words)."""
        return example_sentences(n, generator=generator)
