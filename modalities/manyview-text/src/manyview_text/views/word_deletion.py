"""The ``word_deletion`` view: each word deleted with probability ``p`` (EDA)."""

from __future__ import annotations

from typing import Any

import torch

from manyview.options import check_fraction
from manyview_text._texts import check_texts, split_words
from manyview_text.views.base import TextView

__all__ = ["WordDeletion"]


class WordDeletion(TextView):
    """Delete each word independently with probability ``p``; when every word of a text
    would go, one of them (drawn uniformly) is kept, as in EDA's random deletion (Wei and
    Zou, "EDA: Easy Data Augmentation Techniques for Boosting Performance on Text
    Classification Tasks", EMNLP 2019).

    Args:
        p: the deletion probability per word (EDA: 0.1).

    Inputs: a list of N strings. Output: a list of N strings; a text with a word keeps at
    least one, an empty text stays empty.
    """

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = check_fraction(p, "p", "word_deletion")

    def forward(self, x: Any, *, generator: torch.Generator | None = None) -> list[str]:
        words = split_words(check_texts(x, "word_deletion"))
        total = sum(len(w) for w in words)
        u = torch.rand(total, generator=generator).tolist()
        keep_one = torch.rand(len(words), generator=generator).tolist()  # for all-deleted texts
        out, k = [], 0
        for j, ws in enumerate(words):
            kept = [w for i, w in enumerate(ws) if u[k + i] >= self.p]
            if ws and not kept:
                kept = [ws[min(int(keep_one[j] * len(ws)), len(ws) - 1)]]
            out.append(" ".join(kept))
            k += len(ws)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"
