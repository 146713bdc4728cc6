"""The ``span_swap`` view: two non-overlapping spans of words swapped (EDA"s random swap)."""

from __future__ import annotations

from typing import Any

import torch

from manyview.options import check_int
from manyview_text._texts import check_texts, split_words
from manyview_text.views.base import TextView

__all__ = ["SpanSwap"]


class SpanSwap(TextView):
    """Swap two non-overlapping spans of words, ``swaps`` times per text.

    Each swap draws a span length L uniformly from 1..min(``max_span``, W // 2) for a text
    of W words, then a pair of non-overlapping length-L spans uniformly among all such
    pairs, and exchanges them. ``max_span=1`` is EDA's random swap. Texts of fewer than two
    words are unchanged. The words are only reordered: the output has the same words.

    Args:
        max_span: the longest span, in words.
        swaps: swaps per text.

    Inputs: a list of N strings. Output: a list of N strings.
    """

    def __init__(self, max_span: int = 3, swaps: int = 1) -> None:
        super().__init__()
        self.max_span = check_int(max_span, "max_span", "span_swap")
        self.swaps = check_int(swaps, "swaps", "span_swap")

    def forward(self, x: Any, *, generator: torch.Generator | None = None) -> list[str]:
        out = []
        for ws in split_words(check_texts(x, "span_swap")):
            for _ in range(self.swaps):
                if len(ws) < 2:
                    break
                top = min(self.max_span, len(ws) // 2)
                length = int(torch.randint(1, top + 1, (1,), generator=generator))
                # Pairs i < j of {0, ..., W - 2L + 1} <-> spans starting at a = i, b = j + L - 1.
                i, j = sorted(
                    torch.randperm(len(ws) - 2 * length + 2, generator=generator)[:2].tolist()
                )
                a, b = i, j + length - 1
                ws = (
                    ws[:a]
                    + ws[b : b + length]
                    + ws[a + length : b]
                    + ws[a : a + length]
                    + ws[b + length :]
                )
            out.append(" ".join(ws))
        return out

    def extra_repr(self) -> str:
        return f"max_span={self.max_span}, swaps={self.swaps}"
