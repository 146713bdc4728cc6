"""Checks and example batches shared by the tokenizer, the encoder and the views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from manyview.benchmarks.prompts import DIGIT_NAMES

_WORDS = (
    *DIGIT_NAMES,
    "a",
    "the",
    "photo",
    "digit",
    "of",
    "spoken",
    "word",
    "small",
    "large",
    "red",
    "blue",
    "quick",
    "dog",
    "cat",
    "runs",
    "sits",
    "on",
    "under",
    "near",
    "picture",
    "says",
)


def check_texts(x: Any, who: str) -> list[str]:
    """``x`` as a new list of strings, or a ValueError that names the problem.

    A batch of text is a list (or tuple) of at least one string, which is what
    ``torch.utils.data.default_collate`` makes of the samples' strings."""
    if isinstance(x, str):
        raise ValueError(
            f"{who}: expects a batch (a list of strings), got one str; wrap it: [text]"
        )
    if not isinstance(x, list | tuple):
        raise ValueError(f"{who}: expects a list of strings, got {type(x).__name__}")
    if not x:
        raise ValueError(f"{who}: got an empty list of strings; a batch needs at least one text")
    for i, item in enumerate(x):
        if not isinstance(item, str):
            raise ValueError(
                f"{who}: item {i} is a {type(item).__name__} ({item!r:.40}), not a str; "
                "every item of a text batch must be a string"
            )
    return list(x)


def example_sentences(n: int, *, generator: torch.Generator | None = None) -> list[str]:
    """``n`` short random sentences (3 to 8 words) drawn with ``generator``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"example_inputs: n must be a positive int, got {n!r}")
    lengths = torch.randint(3, 9, (n,), generator=generator).tolist()
    words = torch.randint(len(_WORDS), (sum(lengths),), generator=generator).tolist()
    out, start = [], 0
    for length in lengths:
        out.append(" ".join(_WORDS[i] for i in words[start : start + length]))
        start += length
    return out


def split_words(texts: Sequence[str]) -> list[list[str]]:
    """Whitespace-separated words of each text (runs of whitespace become one space)."""
    return [t.split() for t in texts]
