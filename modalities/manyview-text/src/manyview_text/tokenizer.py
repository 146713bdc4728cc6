"""open_clip's BPE tokenizer with a fixed context length, truncation that warns, and clear
errors. The vocabulary ships inside open_clip: tokenizing never touches the network."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from manyview_text._texts import check_texts

__all__ = ["Tokenizer"]


@functools.cache
def _bpe(clean: str) -> Any:
    """One shared ``open_clip.SimpleTokenizer`` per cleaning mode, so the vocabulary is read
    once (the tokenizer keeps no per-call state besides its BPE cache)."""
    import open_clip

    return open_clip.SimpleTokenizer(context_length=None, clean=clean)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


class Tokenizer:
    """Strings to token ids ``(N, context_length)``, as ``open_clip.tokenize`` does:
    ``<start_of_text>``, the BPE tokens, ``<end_of_text>``, then zeros.

    A text longer than the context is truncated (its last kept token becomes
    ``<end_of_text>``, as in open_clip) and a warning says so the first time it happens for
    this tokenizer; :attr:`truncated` counts the texts truncated so far.

    Args:
        context_length (`int`, defaults to 77): tokens per text, start and end included.
        clean (`str`, defaults to ``"lower"``): open_clip's text cleaning (``"lower"``,
            ``"whitespace"`` or ``"canonicalize"``).
        who (`str`): the name used in warnings and errors.

    Example::

        tok = Tokenizer(16)
        ids = tok(["a photo of the digit seven"])  # LongTensor (1, 16)
    """

    def __init__(
        self, context_length: int = 77, *, clean: str = "lower", who: str = "tokenizer"
    ) -> None:
        if isinstance(context_length, bool) or not isinstance(context_length, int):
            raise ValueError(f"{who}: context_length must be an int, got {context_length!r}")
        if context_length < 2:
            raise ValueError(
                f"{who}: context_length must be >= 2 (start and end), got {context_length}"
            )
        if clean not in ("lower", "whitespace", "canonicalize"):
            raise ValueError(
                f"{who}: clean must be 'lower', 'whitespace' or 'canonicalize', got {clean!r}"
            )
        self.context_length = context_length
        self.clean = clean
        self.who = who
        self.truncated = 0
        self._warned = False
        bpe = _bpe(clean)
        self.sot_token_id: int = bpe.sot_token_id
        self.eot_token_id: int = bpe.eot_token_id
        self.vocab_size: int = bpe.vocab_size

    def encode(self, text: str) -> list[int]:
        """The BPE ids of one text, without start and end tokens and without truncation."""
        return _bpe(self.clean).encode(text)

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """The text of token ids (special tokens and padding dropped)."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        special = {self.sot_token_id, self.eot_token_id, 0}
        return _bpe(self.clean).decode([i for i in ids if i not in special]).strip()

    def __call__(self, texts: Sequence[str]) -> Tensor:
        """Token ids ``(N, context_length)`` (int64) of a list of N strings.

        Raises:
            ValueError: not a list of strings, or an empty one.
        """
        texts = check_texts(texts, self.who)
        ctx = self.context_length
        out = torch.zeros(len(texts), ctx, dtype=torch.long)
        longest, first, count = 0, -1, 0
        bpe = _bpe(self.clean)
        for i, text in enumerate(texts):
            ids = [self.sot_token_id, *bpe.encode(text), self.eot_token_id]
            if len(ids) > ctx:
                count += 1
                first = i if first < 0 else first
                longest = max(longest, len(ids))
                ids = ids[:ctx]
                ids[-1] = self.eot_token_id
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        if count:
            self.truncated += count
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"{self.who}: {count} of {len(texts)} texts are longer than the context of "
                    f"{ctx} tokens and were truncated (the longest has {longest} tokens; the "
                    f"first is {_short(texts[first])}). Raise context_length to keep them; this "
                    "warning is shown once per tokenizer.",
                    UserWarning,
                    stacklevel=2,
                )
        return out

    def __repr__(self) -> str:
        return f"Tokenizer(context_length={self.context_length}, clean={self.clean!r})"
