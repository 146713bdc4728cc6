"""The ``token_mask`` view: each word replaced by a mask token with probability ``p``."""

from __future__ import annotations

from typing import Any

import torch

from manyview.options import check_fraction
from manyview_text._texts import check_texts, split_words
from manyview_text.views.base import TextView

__all__ = ["TokenMask"]


class TokenMask(TextView):
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
        self.p = check_fraction(p, "p", "token_mask")
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
