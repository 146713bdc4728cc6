"""Prompt templates, prompt ensembling and zero-shot classification.

CLIP classifies without training by embedding one sentence per class ("a photo of the
digit seven") and picking the class whose text embedding is closest to the input's
(Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021, section 3.1.4). Ensembling several templates per class helps: each class
embedding is the mean of its L2-normalised template embeddings, normalised again.

The template sets, :func:`format_prompts`, :func:`get_templates` and :func:`ensemble` are
plain strings and arithmetic: they live in the core (:mod:`manyview.benchmarks.prompts`) and
are re-exported here beside the text-tower helpers.

Example::

    from manyview_text import prompts

    weights = prompts.class_embeddings(text_encoder, prompts.DIGIT_NAMES, "digit")  # (10, D)
    logits = prompts.zero_shot_logits(image_encoder(images), weights)             # (N, 10)

With a recipe's projectors, encode through both: ``nn.Sequential(encoder, projector)``
takes a list of strings too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.benchmarks.prompts import (
    DIGIT_NAMES,
    DIGIT_TEMPLATES,
    SPOKEN_WORD_TEMPLATES,
    TEMPLATES,
    Template,
    ensemble,
    format_prompts,
    get_templates,
)

__all__ = [
    "DIGIT_NAMES",
    "DIGIT_TEMPLATES",
    "SPOKEN_WORD_TEMPLATES",
    "TEMPLATES",
    "ZeroShotClassifier",
    "class_embeddings",
    "ensemble",
    "format_prompts",
    "get_templates",
    "zero_shot_logits",
]


def class_embeddings(
    encoder: Callable[[list[str]], Tensor],
    classnames: Sequence[str],
    templates: str | Sequence[Template] = "digit",
    *,
    batch_size: int = 256,
) -> Tensor:
    """The ensembled, unit-norm embedding of every class: ``(C, D)``.

    ``encoder`` maps a list of strings to ``(n, D)`` (``open_clip_text``, or the encoder
    followed by a recipe's projector). It runs without gradients and, when it is an
    ``nn.Module``, in eval mode (its mode is restored afterwards), so the result is
    deterministic.
    """
    prompts = format_prompts(classnames, templates)
    flat = [p for per_class in prompts for p in per_class]
    was_training = isinstance(encoder, nn.Module) and encoder.training
    if isinstance(encoder, nn.Module):
        encoder.eval()
    try:
        with torch.no_grad():
            parts = [encoder(flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)]
    finally:
        if was_training:
            encoder.train()
    out = torch.cat(parts).reshape(len(prompts), len(prompts[0]), -1)
    return ensemble(out)


def zero_shot_logits(features: Tensor, class_embeddings: Tensor, *, scale: float = 100.0) -> Tensor:
    """``scale · cos(features_n, class_c)``: ``(N, D)`` features and ``(C, D)`` class
    embeddings give ``(N, C)`` logits (CLIP's learned scale ends at 100).

    Raises:
        ValueError: shapes that do not fit.
    """
    if (
        not isinstance(features, Tensor)
        or not isinstance(class_embeddings, Tensor)
        or features.dim() != 2
        or class_embeddings.dim() != 2
        or features.shape[1] != class_embeddings.shape[1]
    ):
        got = [
            tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            for t in (features, class_embeddings)
        ]
        raise ValueError(
            f"zero_shot_logits: expects features (N, D) and classes (C, D), got {got[0]} and {got[1]}"
        )
    u = F.normalize(features, dim=-1)
    w = F.normalize(class_embeddings.to(u.dtype), dim=-1)
    return scale * u @ w.T


class ZeroShotClassifier(nn.Module):
    """Features ``(N, D)`` to class logits ``(N, C)`` against fixed class embeddings.

    Args:
        class_embeddings: ``(C, D)``, e.g. from :func:`class_embeddings`.
        scale: the logit scale.

    Example::

        clf = ZeroShotClassifier.from_encoder(text_encoder, DIGIT_NAMES, "digit")
        predicted = clf(image_encoder(images)).argmax(dim=1)
    """

    def __init__(self, class_embeddings: Tensor, scale: float = 100.0) -> None:
        super().__init__()
        if not isinstance(class_embeddings, Tensor) or class_embeddings.dim() != 2:
            raise ValueError("ZeroShotClassifier: class_embeddings must be a (C, D) tensor")
        self.register_buffer("weights", F.normalize(class_embeddings.detach(), dim=-1))
        self.scale = float(scale)

    @classmethod
    def from_encoder(
        cls,
        encoder: Callable[[list[str]], Tensor],
        classnames: Sequence[str],
        templates: str | Sequence[Template] = "digit",
        *,
        scale: float = 100.0,
    ) -> ZeroShotClassifier:
        """Embed the classes' prompts with ``encoder`` (see :func:`class_embeddings`)."""
        return cls(class_embeddings(encoder, classnames, templates), scale=scale)

    def forward(self, features: Tensor) -> Tensor:
        return zero_shot_logits(features, self.weights, scale=self.scale)
