"""What the text views share: the example batch (their options are checked with
:mod:`manyview.options`)."""

from __future__ import annotations

import torch
from torch import nn

from manyview_text._texts import example_sentences

__all__ = ["TextView"]


class TextView(nn.Module):
    """Shared parts of the text views: the example batch."""

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> list[str]:
        """``n`` short random sentences (3 to 8 words)."""
        return example_sentences(n, generator=generator)
