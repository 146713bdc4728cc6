"""Views of text batches: lists of strings in, lists of strings out, seeded.

Each view draws its per-sample randomness from the ``torch.Generator`` it is given, so a
batch's views are a function of the batch and the generator's state. Words are the
whitespace-separated pieces of a text (runs of whitespace become one space in the output).

- ``simcse``: the sentences unchanged; the encoder's dropout is the augmentation (SimCSE).
- ``token_mask``: each word replaced by a mask token with probability ``p``.
- ``word_deletion``: each word deleted with probability ``p`` (one word always kept; EDA).
- ``span_swap``: two non-overlapping spans of words swapped (EDA's random swap, for spans).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from manyview_text._texts import check_texts, example_sentences, split_words

__all__ = ["SimCSE", "SpanSwap", "TokenMask", "WordDeletion"]


def _check_p(p: float, who: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
        raise ValueError(f"{who}: p must lie in [0, 1], got {p!r}")
    return float(p)


def _positive_int(value: Any, name: str, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
    return value


class _TextView(nn.Module):
    """Shared parts: the example batch."""

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> list[str]:
        """``n`` short random sentences (3 to 8 words)."""
        return example_sentences(n, generator=generator)


class SimCSE(_TextView):
    """SimCSE's dropout view: the same sentences, unchanged (Gao, Yao, Chen, "SimCSE: Simple
    Contrastive Learning of Sentence Embeddings", EMNLP 2021).

    The augmentation is the encoder's dropout: with ``num_views = 2`` a recipe passes the
    same sentences through the encoder twice in training mode, and the two dropout masks
    make the two views. The encoder therefore needs dropout — ``open_clip_text`` with
    ``dropout = 0.1`` (SimCSE's, BERT's default) — or the two views are identical.

    Inputs: a list of N strings. Output: a new list of the same N strings.
    ``generator`` is accepted for the view interface and unused.
    """

    def forward(self, x: Any, *, generator: torch.Generator | None = None) -> list[str]:
        return check_texts(x, "simcse")


class TokenMask(_TextView):
    """Replace each word with ``mask_token`` independently with probability ``p``.

    open_clip's BPE vocabulary has no mask token, so the mask is a plain string the encoder
    learns to read as "missing" (``"[MASK]"`` tokenizes to three BPE tokens; a one-token
    choice such as ``"*"`` keeps texts shorter).

    Args:
        p: the masking probability per word (BERT: 0.15).
        mask_token: the replacement string.

    Inputs: a list of N strings. Output: a list of N strings.
    """

    def __init__(self, p: float = 0.15, mask_token: str = "[MASK]") -> None:
        super().__init__()
        self.p = _check_p(p, "token_mask")
        if (
            not isinstance(mask_token, str)
            or not mask_token.strip()
            or mask_token != mask_token.strip()
            or " " in mask_token
        ):
            raise ValueError(
                f"token_mask: mask_token must be one non-empty word, got {mask_token!r}"
            )
        self.mask_token = mask_token

    def forward(self, x: Any, *, generator: torch.Generator | None = None) -> list[str]:
        words = split_words(check_texts(x, "token_mask"))
        total = sum(len(w) for w in words)
        u = torch.rand(total, generator=generator).tolist()
        out, k = [], 0
        for ws in words:
            out.append(
                " ".join(self.mask_token if u[k + i] < self.p else w for i, w in enumerate(ws))
            )
            k += len(ws)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}, mask_token={self.mask_token!r}"


class WordDeletion(_TextView):
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
        self.p = _check_p(p, "word_deletion")

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


class SpanSwap(_TextView):
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
        self.max_span = _positive_int(max_span, "max_span", "span_swap")
        self.swaps = _positive_int(swaps, "swaps", "span_swap")

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
