"""Prompt templates, prompt ensembling and zero-shot classification.

CLIP classifies without training by embedding one sentence per class ("a photo of the
digit seven") and picking the class whose text embedding is closest to the input's
(Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021, section 3.1.4). Ensembling several templates per class helps: each class
embedding is the mean of its L2-normalised template embeddings, normalised again.

Example::

    from manyview_text import prompts

    weights = prompts.class_embeddings(text_encoder, prompts.DIGIT_NAMES, "digit")  # (10, D)
    logits = prompts.zero_shot_logits(image_encoder(images), weights)             # (N, 10)

With a recipe's projectors, encode through both: ``nn.Sequential(encoder, projector)``
takes a list of strings too.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

Template = str | Callable[[str], str]

DIGIT_NAMES: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
"""The ten digits' names, in label order."""

DIGIT_TEMPLATES: tuple[str, ...] = (
    "a photo of the digit {}.",
    "a picture of the number {}.",
    "a handwritten {}.",
    "an image of the digit {}.",
    "a blurry photo of the digit {}.",
    "a drawing of the number {}.",
)
"""Templates for images of digits."""

SPOKEN_WORD_TEMPLATES: tuple[str, ...] = (
    "the spoken word {}.",
    "a recording of someone saying {}.",
    "a voice saying the word {}.",
    "the sound of the word {}.",
)
"""Templates for recordings of spoken words."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "digit": DIGIT_TEMPLATES,
    "spoken_word": SPOKEN_WORD_TEMPLATES,
    "plain": ("{}",),
}
"""Named template sets for :func:`get_templates`."""


def _check_template(template: Any) -> Template:
    if callable(template):
        return template
    if not isinstance(template, str):
        raise ValueError(
            f"a template is a str with '{{}}' or a callable, not {type(template).__name__}"
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"template {template!r} is not a valid format string: {exc}") from None
    if not fields or any(f not in ("", "0") for f in fields):
        raise ValueError(
            f"template {template!r} must have a '{{}}' where the class name goes "
            "(and no other replacement fields; write a literal brace as '{{' or '}}')"
        )
    return template


def get_templates(templates: str | Sequence[Template] = "digit") -> tuple[Template, ...]:
    """Templates from a set's name (:data:`TEMPLATES`: ``"digit"``, ``"spoken_word"``,
    ``"plain"``), one user template (a str with ``{}``) or a sequence of them (strings with
    ``{}`` or callables ``name -> prompt``).

    Raises:
        ValueError: an unknown set name, an empty sequence, or a template without ``{}``.
    """
    if isinstance(templates, str):
        if templates in TEMPLATES:
            return TEMPLATES[templates]
        if "{" not in templates:
            raise ValueError(
                f"unknown template set {templates!r}: use one of {sorted(TEMPLATES)} or "
                "templates with '{}' for the class name"
            )
        return (_check_template(templates),)
    if callable(templates):
        return (templates,)
    out = tuple(_check_template(t) for t in templates)
    if not out:
        raise ValueError("templates: got an empty sequence; give at least one template")
    return out


def _check_classnames(classnames: Sequence[str]) -> list[str]:
    if isinstance(classnames, str) or not isinstance(classnames, Sequence) or not classnames:
        raise ValueError("classnames must be a non-empty list of strings")
    for i, name in enumerate(classnames):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"classnames[{i}] must be a non-empty str, got {name!r}")
    return list(classnames)


def format_prompts(
    classnames: Sequence[str], templates: str | Sequence[Template] = "digit"
) -> list[list[str]]:
    """Every class's prompts: ``prompts[c][t]`` is template t filled with class c's name."""
    names = _check_classnames(classnames)
    temps = get_templates(templates)
    return [[t(name) if callable(t) else t.format(name) for t in temps] for name in names]


def ensemble(embeddings: Tensor) -> Tensor:
    r"""Prompt ensembling: :math:`w_c = \mathrm{normalize}(\frac1T \sum_t
    \mathrm{normalize}(e_{ct}))`.

    Inputs: ``(C, T, D)`` template embeddings per class (or ``(T, D)`` for one class).
    Output: ``(C, D)`` (or ``(D,)``), unit rows.
    """
    if not isinstance(embeddings, Tensor) or embeddings.dim() not in (2, 3):
        shape = (
            tuple(embeddings.shape) if isinstance(embeddings, Tensor) else type(embeddings).__name__
        )
        raise ValueError(f"ensemble: expects embeddings (C, T, D) or (T, D), got {shape}")
    return F.normalize(F.normalize(embeddings, dim=-1).mean(dim=-2), dim=-1)


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
