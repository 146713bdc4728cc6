"""The ``simcse`` view: the sentences unchanged; the encoder"s dropout makes the views."""

from __future__ import annotations

from typing import Any

import torch

from manyview_text._texts import check_texts
from manyview_text.views.base import TextView

__all__ = ["SimCSE"]


class SimCSE(TextView):
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
